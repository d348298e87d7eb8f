//! ONNX Runtime: the shared library, loaded once per process (from `ORT_DYLIB_PATH`, else the
//! copy scripts/fetch-models puts in models/), and the inference sessions built on it.
//!
//! `ort` is built with `load-dynamic`: nothing is linked or downloaded at build time, and a
//! machine without the library still runs everything that does not need a model. The first
//! call to [`environment`] (or [`session`]) loads it; a failure is remembered and returned
//! to every later caller, since a process cannot retry loading a library half-initialised.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ort::environment::Environment;
use ort::logging::LogLevel;
use ort::session::Session;

/// The runtime library scripts/fetch-models installs (from the PyPI `onnxruntime` wheel),
/// relative to the working directory like [`crate::config::DEFAULT_MODEL`].
pub const DEFAULT_RUNTIME: &str = "models/libonnxruntime.so.1.32.0";

/// The environment variable that names another runtime library (`ort`'s own convention).
pub const RUNTIME_ENV: &str = "ORT_DYLIB_PATH";

/// Intra-op threads of a session unless its caller asks for more: the models run here are
/// small and run per call, so parallelism comes from calls, not from splitting one run
/// (ONNX Runtime's pool would otherwise take every core for each session and spin).
pub const DEFAULT_THREADS: usize = 1;

/// Why ONNX Runtime or a model could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OnnxError {
    /// The runtime library could not be loaded.
    #[error(
        "ONNX Runtime {}: {message} (run scripts/fetch-models, or set {RUNTIME_ENV} to a \
         libonnxruntime.so of version 1.{} or later)",
        path.display(),
        ort::MINOR_VERSION
    )]
    Runtime {
        /// The library that was tried.
        path: PathBuf,
        /// ONNX Runtime's or the loader's message.
        message: String,
    },
    /// The model file does not exist.
    #[error("ONNX model {}: not found (run scripts/fetch-models)", path.display())]
    ModelMissing {
        /// The file that was looked for.
        path: PathBuf,
    },
    /// The model file exists but no session could be built from it.
    #[error("ONNX model {}: {message}", path.display())]
    Model {
        /// The model file.
        path: PathBuf,
        /// ONNX Runtime's message.
        message: String,
    },
    /// Running a session, or reading its outputs, failed.
    #[error("ONNX inference: {0}")]
    Run(String),
}

impl OnnxError {
    /// A failure of a session run: `ort`'s message, kept as text so the error is `Clone`.
    pub fn run(e: impl std::fmt::Display) -> Self {
        OnnxError::Run(e.to_string())
    }
}

/// The runtime library to load: `ORT_DYLIB_PATH` when set and not empty, else
/// [`DEFAULT_RUNTIME`].
pub fn runtime_path() -> PathBuf {
    runtime_path_from(std::env::var_os(RUNTIME_ENV))
}

fn runtime_path_from(var: Option<std::ffi::OsString>) -> PathBuf {
    var.filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_RUNTIME), PathBuf::from)
}

/// The process's ONNX Runtime environment, loading the library on the first call.
pub fn environment() -> Result<&'static Environment, OnnxError> {
    static ENVIRONMENT: OnceLock<Result<Environment, OnnxError>> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(|| load(&runtime_path()))
        .as_ref()
        .map_err(Clone::clone)
}

fn load(path: &Path) -> Result<Environment, OnnxError> {
    let failed = |message: String| OnnxError::Runtime {
        path: path.to_path_buf(),
        message,
    };
    // A path with a folder in it is made absolute here, against the working directory;
    // `ort` would otherwise try it beside the executable first. A bare file name is left to
    // the system's library search.
    let library = if path.components().count() > 1 {
        std::path::absolute(path).map_err(|e| failed(e.to_string()))?
    } else {
        path.to_path_buf()
    };
    let environment = ort::init_from(&library)
        .map_err(|e| failed(e.to_string()))?
        .with_name("callgate")
        .with_logger(Arc::new(log_to_tracing))
        .build()
        .map_err(|e| failed(e.to_string()))?;
    tracing::debug!(library = %library.display(), "ONNX Runtime loaded");
    Ok(environment)
}

/// ONNX Runtime's own log lines, as tracing events (its default logger writes to stderr).
fn log_to_tracing(level: LogLevel, category: &str, _id: &str, location: &str, message: &str) {
    match level {
        LogLevel::Verbose | LogLevel::Info => {
            tracing::debug!(target: "onnxruntime", category, location, "{message}")
        }
        LogLevel::Warning => tracing::warn!(target: "onnxruntime", category, location, "{message}"),
        LogLevel::Error | LogLevel::Fatal => {
            tracing::error!(target: "onnxruntime", category, location, "{message}")
        }
    }
}

/// A session for the model at `model` on [`DEFAULT_THREADS`] intra-op threads.
pub fn session(model: &Path) -> Result<Session, OnnxError> {
    session_with_threads(model, DEFAULT_THREADS)
}

/// A session for the model at `model` on `threads` intra-op threads. Reads and optimises
/// the model: file I/O and CPU work, so not on a tokio worker.
pub fn session_with_threads(model: &Path, threads: usize) -> Result<Session, OnnxError> {
    if !model.is_file() {
        return Err(OnnxError::ModelMissing {
            path: model.to_path_buf(),
        });
    }
    let failed = |message: String| OnnxError::Model {
        path: model.to_path_buf(),
        message,
    };
    Session::builder(environment()?)
        .and_then(|b| b.with_intra_threads(threads.max(1)).map_err(Into::into))
        .and_then(|mut b| b.commit_from_file(model))
        .map_err(|e| failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_comes_from_the_variable_unless_it_is_unset_or_empty() {
        assert_eq!(runtime_path_from(None), PathBuf::from(DEFAULT_RUNTIME));
        assert_eq!(
            runtime_path_from(Some("".into())),
            PathBuf::from(DEFAULT_RUNTIME)
        );
        assert_eq!(
            runtime_path_from(Some("/opt/ort/libonnxruntime.so".into())),
            PathBuf::from("/opt/ort/libonnxruntime.so")
        );
    }

    #[test]
    fn a_missing_model_says_how_to_fetch_it() {
        let e = session(Path::new("models/no-such-model.onnx")).expect_err("missing");
        assert!(matches!(e, OnnxError::ModelMissing { .. }), "{e}");
        assert!(e.to_string().contains("scripts/fetch-models"), "{e}");
    }

    #[test]
    fn a_runtime_that_cannot_load_names_the_file_and_the_fix() {
        let e = load(Path::new("models/no-such-libonnxruntime.so")).expect_err("missing");
        let text = e.to_string();
        assert!(text.contains("no-such-libonnxruntime.so"), "{text}");
        assert!(text.contains("scripts/fetch-models"), "{text}");
    }

    #[test]
    fn the_fetched_runtime_loads_and_builds_a_session() {
        let session =
            session(Path::new("models/silero_vad.onnx")).unwrap_or_else(|e| panic!("{e}"));
        let inputs: Vec<_> = session
            .inputs()
            .iter()
            .map(|i| i.name().to_owned())
            .collect();
        assert_eq!(inputs, ["input", "state", "sr"]);
    }
}
