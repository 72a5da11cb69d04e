//! Sweep spec RON → validation → the configurations it enumerates (bounded by the caps).
#![no_main]

use libfuzzer_sys::fuzz_target;
use quantscape::search::SweepSpec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = SweepSpec::from_ron(text, "spec.ron") {
        if spec.validate().is_ok() {
            let _ = spec.configurations(&spec.models.clone());
        }
    }
});
