//! `weft module add` takes a component, or a core WebAssembly module that
//! it makes a component of first.

use anyhow::Context;

/// A core WebAssembly module built with wit-bindgen (the Rust SDK, or
/// `cargo build --target wasm32-unknown-unknown`) carries its WIT world in a
/// custom section; one built from C with the SDK's committed bindings (no
/// wit-bindgen at build time) does not, and gets `world` of the contract
/// embedded. Either becomes the component the node runs. A component
/// passes through unchanged.
pub fn componentize(bytes: Vec<u8>, world: &str) -> anyhow::Result<Vec<u8>> {
    if !bytes.starts_with(b"\0asm\x01\0\0\0") {
        return Ok(bytes);
    }
    let encode = |core: &[u8]| {
        wit_component::ComponentEncoder::default()
            .module(core)
            .and_then(|encoder| encoder.validate(true).encode())
    };
    // Without a `component-type` section the encoder makes an empty
    // component of it, exporting nothing: embed the world first.
    let has_world = wasmparser::Parser::new(0).parse_all(&bytes).any(|payload| {
        matches!(payload, Ok(wasmparser::Payload::CustomSection(c))
                if c.name().starts_with("component-type"))
    });
    let first = if has_world {
        encode(&bytes)
    } else {
        Err(anyhow::anyhow!("the core module carries no WIT world"))
    };
    let component = match first {
        Ok(component) => component,
        Err(first) => {
            // Each contract version's world, oldest first (a module with no
            // world of its own was built before modules carried theirs, so
            // against 0.1.0): the first the module fits.
            let mut made = None;
            for contract in weft_runtime::Contract::ALL.into_iter().rev() {
                let mut resolve = wit_parser::Resolve::default();
                let package = resolve.push_str("weft.wit", contract.wit())?;
                let world = resolve.select_world(&[package], Some(world))?;
                let mut core = bytes.clone();
                wit_component::embed_component_metadata(
                    &mut core,
                    &resolve,
                    world,
                    wit_component::StringEncoding::UTF8,
                )?;
                if let Ok(component) = encode(&core) {
                    made = Some(component);
                    break;
                }
            }
            made.ok_or(first).context(
                "it is a core WebAssembly module that fits no weft WIT world: build it \
                 with an SDK (sdk/), or make a component with `wasm-tools component new`",
            )?
        }
    };
    eprintln!(
        "made a component of the core module ({} → {} bytes)",
        bytes.len(),
        component.len()
    );
    Ok(component)
}
