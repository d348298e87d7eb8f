//! `callgate serve`'s settings through the binary: a file, then the environment, then flags,
//! each later source winning (shown by which source's out-of-range value is refused, so no
//! server has to start).

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Numbers the settings files, so tests running at once never share one.
static FILES: AtomicUsize = AtomicUsize::new(0);

/// Runs `callgate serve` with a settings file holding `file`, `env` in the environment and
/// `flags`; returns its error output (it must fail).
fn serve_error(file: &str, env: Option<&str>, flags: &[&str]) -> String {
    let dir = std::env::temp_dir().join(format!("callgate-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{}.toml", FILES.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, file).expect("write settings file");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_callgate"));
    serve.arg("serve").arg("--config").arg(&path).args(flags);
    serve.env_remove("CALLGATE_TTS_RATE");
    if let Some(rate) = env {
        serve.env("CALLGATE_TTS_RATE", rate);
    }
    let out = serve.output().expect("run callgate serve");
    assert!(!out.status.success(), "serve must refuse these settings");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_environment_beats_the_file_and_flags_beat_both() {
    let err = serve_error("tts-rate = 999", None, &[]);
    assert!(
        err.contains("tts-rate: must be 80..=450 words per minute, got 999"),
        "{err}"
    );
    let err = serve_error("tts-rate = 100", Some("998"), &[]);
    assert!(
        err.contains("got 998"),
        "the environment wins over the file: {err}"
    );
    let err = serve_error("tts-rate = 100", Some("998"), &["--tts-rate", "997"]);
    assert!(err.contains("got 997"), "a flag wins over both: {err}");
}

#[test]
fn a_file_with_an_unknown_key_is_refused_naming_it() {
    let err = serve_error("asr-wrokers = 2", None, &[]);
    assert!(err.contains("asr-wrokers"), "{err}");
}
