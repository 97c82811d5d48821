//! The one place the host generates bindings from the WIT in `sdk/wit/`.
//! Imports are trappable so that a host fault (a storage error, a module
//! exceeding its write budget) stops the call instead of lying to it.

/// The `verb` world.
pub mod verb {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "verb",
        imports: { default: trappable },
    });
}

/// The `projection` world.
pub mod projection {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "projection",
        imports: { default: trappable },
    });
}
