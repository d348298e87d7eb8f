//! Text frames: any UTF-8 through `parse_client_message` and `parse_server_message`, with
//! the serialize-and-reparse round trip on whatever parses.
#![no_main]

use callgate_fuzz as check;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(text) = check::fuzz_text(data) {
        check::json_message(text);
    }
});
