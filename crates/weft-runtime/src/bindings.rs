//! The one place the host generates bindings from the WIT: the published
//! version of the contract under `sdk/wit/` that this node implements.
//! Imports are trappable so that a host fault (a storage error, a module
//! exceeding its write budget) stops the call instead of lying to it.

/// The WIT package the bindings below are generated from; its directory
/// under `sdk/wit/` is named after it (`weft-module@0.1.0`).
pub const PACKAGE: &str = "weft:module@0.1.0";

/// The contract's text, as the node was built with it.
pub const WIT: &str = include_str!("../../../sdk/wit/weft-module@0.1.0/weft.wit");

/// The full name of one of [`PACKAGE`]'s interfaces, as a component
/// imports it: `weft:module/log@0.1.0`.
pub fn interface(name: &str) -> String {
    let (package, version) = PACKAGE.split_once('@').unwrap_or((PACKAGE, ""));
    format!("{package}/{name}@{version}")
}

/// The interfaces both worlds use, generated once so that both worlds'
/// `Activity` (and the host's `log` implementation) are one.
mod shared {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit/weft-module@0.1.0",
        interfaces: "
            import weft:module/types@0.1.0;
            import weft:module/log@0.1.0;
        ",
        imports: { default: trappable },
    });
}
pub use shared::weft::module::{log, types};

/// The `verb` world.
pub mod verb {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit/weft-module@0.1.0",
        world: "verb",
        imports: { default: trappable },
        with: {
            "weft:module/types": super::types,
            "weft:module/log": super::log,
        },
    });
}

/// The `projection` world.
pub mod projection {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit/weft-module@0.1.0",
        world: "projection",
        imports: { default: trappable },
        with: {
            "weft:module/types": super::types,
            "weft:module/log": super::log,
        },
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn package_is_the_wit_package() {
        let line = format!("\npackage {};\n", super::PACKAGE);
        assert!(super::WIT.contains(&line), "{line:?}");
        assert_eq!(super::interface("kv"), super::PACKAGE.replace('@', "/kv@"));
    }
}
