//! The LLM client's event-stream parser: any bytes, split at fuzzer-chosen points, must give
//! the same events as in one piece and as the whole-body model.
#![no_main]

use callgate_fuzz as check;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (body, cuts) = check::sse_fuzz_input(data);
    check::sse_split_invariant(body, &cuts);
});
