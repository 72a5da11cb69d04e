//! GGUF bytes: quantscape's header check, and — only when it accepts — candle's reader and every
//! tensor, without the panic guard `convert` wraps them in. A candle panic on a file our check
//! accepted is a finding: the check is what keeps `convert` from relying on the guard.
#![no_main]

use std::io::Cursor;

use candle_core::quantized::gguf_file::Content;
use libfuzzer_sys::fuzz_target;
use quantscape::model::gguf_check;

fuzz_target!(|data: &[u8]| {
    if gguf_check::check_bytes(data, std::path::Path::new("fuzz.gguf")).is_err() {
        return;
    }
    let mut r = Cursor::new(data);
    if let Ok(c) = Content::read(&mut r) {
        let names: Vec<String> = c.tensor_infos.keys().cloned().collect();
        for n in names {
            let _ = c.tensor(&mut r, &n, &candle_core::Device::Cpu);
        }
    }
});
