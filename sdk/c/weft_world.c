/* Part of the weft C SDK: linked into every C module.
 *
 * wit-bindgen's C bindings (bindings/, generated once from
 * sdk/wit/weft-module@0.1.0, which is never edited) ask the linker to keep an
 * object that carries the WIT world. `weft module add` embeds the world
 * itself when it makes the component, so these anchors are empty and the
 * build needs only clang and wasi-libc. */
void __component_type_object_force_link_projection(void) {}
void __component_type_object_force_link_verb(void) {}
