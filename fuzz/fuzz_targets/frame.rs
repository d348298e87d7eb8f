//! Binary audio frames: any bytes through both decoders (strict round trip), and the same
//! bytes read as header fields and samples through encode-then-decode.
#![no_main]

use callgate_fuzz as check;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check::input_frame(data);
    check::output_frame(data);
    if let Some((seq, turn, first, last, samples)) = check::frame_fields_fuzz_input(data) {
        check::frames_encode_then_decode(seq, turn, first, last, &samples);
    }
});
