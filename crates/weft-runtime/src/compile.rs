//! The compile budget: what an artifact must look like before the engine
//! spends time on it, and how long compiling it may take.
//!
//! Cranelift's time and memory grow faster than linearly with the size of
//! one function, so a small artifact holding one enormous function (a
//! compile bomb) could hold a core for minutes. The artifact is read first
//! (cheap, linear) and refused if any function body or the total code is
//! over the limit; compiling then runs on its own thread, one at a time,
//! and a compile that overruns its time is abandoned (its thread finishes
//! in the background; the request is answered at once).
//!
//! It does not check the contract (imports, exports): that needs the
//! compiled component, see `Runtime::check_contract`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::wasmparser::{Parser, Payload};

use super::RuntimeError;

/// What the artifact may hold.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Largest function body, in bytes.
    pub max_function_bytes: usize,
    /// Most function bodies across all of the component's modules.
    pub max_functions: usize,
}

/// Reads `bytes` without compiling them and refuses what is over `shape`
/// (or is not WebAssembly at all).
pub fn inspect(bytes: &[u8], shape: Shape) -> Result<(), RuntimeError> {
    let mut functions = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        if let Payload::CodeSectionEntry(body) = payload {
            functions += 1;
            if functions > shape.max_functions {
                return Err(RuntimeError::Invalid(format!(
                    "it holds more than {} functions, the node's limit (`[runtime] max_functions`)",
                    shape.max_functions
                )));
            }
            let size = body.range().len();
            if size > shape.max_function_bytes {
                return Err(RuntimeError::Invalid(format!(
                    "function {functions} has a body of {size} bytes, over the node's limit of {} \
                     (`[runtime] max_function_bytes`); split it, or build with optimisations",
                    shape.max_function_bytes
                )));
            }
        }
    }
    Ok(())
}

/// Compiles one artifact at a time, each within `timeout`.
#[derive(Debug, Clone)]
pub struct Compiler {
    timeout: Duration,
    /// Held while a compile runs, also by an abandoned one, so an
    /// overrunning compile never has company.
    one: Arc<Mutex<()>>,
}

impl Compiler {
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            one: Arc::new(Mutex::new(())),
        }
    }

    /// Compiles `bytes` on a compile thread, waiting at most the timeout
    /// for a previous compile and for this one.
    pub fn compile(&self, engine: &Engine, bytes: &[u8]) -> Result<Component, RuntimeError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let (engine, bytes, one) = (engine.clone(), bytes.to_vec(), self.one.clone());
        std::thread::Builder::new()
            .name("weft-compile".into())
            .spawn(move || {
                // A poisoned lock only means an earlier compile panicked;
                // the guard still serialises.
                let _one = one.lock().unwrap_or_else(|p| p.into_inner());
                // The receiver may be gone (timed out): nothing to tell.
                let _ = tx.send(Component::new(&engine, &bytes));
            })
            .map_err(|e| RuntimeError::Cache(format!("cannot start a compile thread: {e}")))?;
        match rx.recv_timeout(self.timeout) {
            Ok(compiled) => compiled.map_err(|e| RuntimeError::Invalid(format!("{e:#}"))),
            Err(_) => Err(RuntimeError::Invalid(format!(
                "compiling it took longer than the node's limit of {} ms \
                 (`[runtime] compile_timeout_ms`)",
                self.timeout.as_millis()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: Shape = Shape {
        max_function_bytes: 1000,
        max_functions: 10,
    };

    #[test]
    fn a_huge_function_is_refused_before_compiling() -> anyhow::Result<()> {
        let body = "(drop (i32.const 1))".repeat(2000);
        let wasm = wat::parse_str(format!("(module (func {body}))"))?;
        let err = inspect(&wasm, SHAPE).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("max_function_bytes")),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn functions_are_counted_inside_components() -> anyhow::Result<()> {
        let funcs = "(func)".repeat(11);
        let wasm = wat::parse_str(format!("(component (core module {funcs}))"))?;
        let err = inspect(&wasm, SHAPE).err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("max_functions")),
            "{err:?}"
        );
        let ok = wat::parse_str("(component (core module (func) (func)))")?;
        assert!(inspect(&ok, SHAPE).is_ok());
        Ok(())
    }

    #[test]
    fn garbage_is_invalid() {
        assert!(matches!(
            inspect(b"\0asm\x0d\0\x01\0garbage", SHAPE),
            Err(RuntimeError::Invalid(_))
        ));
    }
}
