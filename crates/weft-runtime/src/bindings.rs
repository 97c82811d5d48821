//! The one place the host generates bindings from the WIT: every published
//! version of the contract under `sdk/wit/` that this node runs, each in a
//! module of its own (`v0_1`, `v0_2`, `v0_3`). Imports are trappable so that a host
//! fault (a storage error, a module exceeding its write budget) stops the
//! call instead of lying to it.

/// The WIT packages the bindings below are generated from, oldest first;
/// each one's directory under `sdk/wit/` is named after it
/// (`weft-module@0.1.0`).
pub const PACKAGES: [&str; 3] = [v0_1::PACKAGE, v0_2::PACKAGE, v0_3::PACKAGE];

/// The newest contract: what the Rust SDK's projections and the built-in
/// projections target (0.3.0 has no verb world: verbs target 0.2.0).
pub const PACKAGE: &str = v0_3::PACKAGE;

/// The full name of one of `package`'s interfaces, as a component imports
/// it: `weft:module/log@0.1.0`.
pub fn interface(package: &str, name: &str) -> String {
    let (package, version) = package.split_once('@').unwrap_or((package, ""));
    format!("{package}/{name}@{version}")
}

/// Version 0.1.0: the activity with its JSON text, one host call per write.
pub mod v0_1 {
    pub const PACKAGE: &str = "weft:module@0.1.0";
    pub const WIT: &str = include_str!("../../../sdk/wit/weft-module@0.1.0/weft.wit");

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
}

/// Version 0.2.0: the activity's fields parsed, writes in one call per
/// fold, `fold-batch`, a rejection's `field`.
pub mod v0_2 {
    pub const PACKAGE: &str = "weft:module@0.2.0";
    pub const WIT: &str = include_str!("../../../sdk/wit/weft-module@0.2.0/weft.wit");

    mod shared {
        wasmtime::component::bindgen!({
            path: "../../sdk/wit/weft-module@0.2.0",
            interfaces: "
                import weft:module/types@0.2.0;
                import weft:module/log@0.2.0;
            ",
            imports: { default: trappable },
        });
    }
    pub use shared::weft::module::{log, types};

    /// The `verb` world.
    pub mod verb {
        wasmtime::component::bindgen!({
            path: "../../sdk/wit/weft-module@0.2.0",
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
            path: "../../sdk/wit/weft-module@0.2.0",
            world: "projection",
            imports: { default: trappable },
            with: {
                "weft:module/types": super::types,
                "weft:module/log": super::log,
            },
        });
    }
}

/// Version 0.3.0: a projection is passed a run of activities packed (one
/// text, each field a span of it); projections only.
pub mod v0_3 {
    pub const PACKAGE: &str = "weft:module@0.3.0";
    pub const WIT: &str = include_str!("../../../sdk/wit/weft-module@0.3.0/weft.wit");

    mod shared {
        wasmtime::component::bindgen!({
            path: "../../sdk/wit/weft-module@0.3.0",
            interfaces: "
                import weft:module/types@0.3.0;
                import weft:module/log@0.3.0;
            ",
            imports: { default: trappable },
        });
    }
    pub use shared::weft::module::{log, types};

    /// The `projection` world.
    pub mod projection {
        wasmtime::component::bindgen!({
            path: "../../sdk/wit/weft-module@0.3.0",
            world: "projection",
            imports: { default: trappable },
            with: {
                "weft:module/types": super::types,
                "weft:module/log": super::log,
            },
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn packages_are_their_wit_packages() {
        for (package, wit) in [
            (super::v0_1::PACKAGE, super::v0_1::WIT),
            (super::v0_2::PACKAGE, super::v0_2::WIT),
            (super::v0_3::PACKAGE, super::v0_3::WIT),
        ] {
            let line = format!("\npackage {package};\n");
            assert!(wit.contains(&line), "{line:?}");
            assert_eq!(
                super::interface(package, "kv"),
                package.replace('@', "/kv@")
            );
        }
        assert_eq!(super::PACKAGES.last(), Some(&super::PACKAGE));
    }
}
