//! The base64 audio of `audio.chunk`, fuzzed directly: reaching it through JSON parsing
//! would spend most inputs on the JSON syntax instead.
#![no_main]

use callgate_fuzz as check;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((seq, audio)) = check::json_audio_fuzz_input(data) {
        check::json_audio(seq, audio);
    }
});
