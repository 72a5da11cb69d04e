//! `tokenizer.json` through quantscape's loader (our JSON check, then `tokenizers`), then an
//! encode and a decode. A panic inside `tokenizers` that our loader does not turn into an error
//! is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quantscape::model::Tokenizer;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = Tokenizer::from_json(text, std::path::Path::new("tokenizer.json")) {
        if let Ok(ids) = t.encode("It is a truth universally acknowledged, 12345 ünïcode") {
            let _ = t.decode(&ids);
        }
    }
});
