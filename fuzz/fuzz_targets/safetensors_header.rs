//! A checkpoint folder whose `model.safetensors` is the input: opening it validates every
//! header; every listed tensor is then read and converted. Must never panic or over-allocate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quantscape::model::checkpoint::Checkpoint;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("qs-fuzz-safetensors-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    if std::fs::write(dir.join("model.safetensors"), data).is_err() {
        return;
    }
    if let Ok(ck) = Checkpoint::open(&dir) {
        let names: Vec<String> = ck.tensors.keys().cloned().collect();
        for n in names {
            let _ = ck.read_f32(&n);
        }
    }
});
