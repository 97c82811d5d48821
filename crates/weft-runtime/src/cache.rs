//! Compiled modules on disk, keyed by artifact id and engine, so a restart
//! does not recompile. The folder is the node's own: only this node writes
//! it, and wasmtime refuses files made by an incompatible engine.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use wasmtime::Engine;
use wasmtime::component::Component;

/// The cache folder and the engine's fingerprint.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    engine_tag: String,
}

impl Cache {
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_tag: format!("{:016x}", hasher.finish()),
        }
    }

    fn path(&self, artifact: &str) -> PathBuf {
        self.dir
            .join(format!("{artifact}-{}.cwasm", self.engine_tag))
    }

    /// The compiled module for `artifact`, if cached and loadable.
    pub fn load(&self, engine: &Engine, artifact: &str) -> Option<Component> {
        let path = self.path(artifact);
        if !path.exists() {
            return None;
        }
        // SAFETY: the file is in the node's private data folder and was
        // written by `store` below from `Component::serialize` of this
        // engine; wasmtime checks the header's engine compatibility and
        // refuses anything else.
        #[allow(
            unsafe_code,
            reason = "wasmtime requires unsafe to load precompiled code; see SAFETY"
        )]
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unusable compiled module");
                None
            }
        }
    }

    /// Keeps `component` for next time; a failure only costs a recompile.
    pub fn store(&self, artifact: &str, component: &Component) {
        let write = || -> anyhow::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let bytes = component.serialize()?;
            let tmp = self.path(artifact).with_extension("tmp");
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, self.path(artifact))?;
            Ok(())
        };
        if let Err(e) = write() {
            tracing::warn!(artifact, error = %e, "cannot cache a compiled module");
        }
    }
}
