//! `config.json` → `ArchConfig`; an accepted config then builds its RoPE tables, the one
//! allocation sized by the config alone. Must never panic, abort or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quantscape::model::config::ArchConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(c) = ArchConfig::from_json(&v, std::path::Path::new("config.json")) {
        if c.rotary_dims > 0 {
            let _ = quantscape::model::layers::Rope::new(
                c.rotary_dims,
                c.rope_theta,
                c.max_positions,
                &candle_core::Device::Cpu,
            );
        }
    }
});
