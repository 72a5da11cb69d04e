//! A results store (SQLite) from arbitrary bytes: open it, read every table, check it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quantscape::search::Store;

fuzz_target!(|data: &[u8]| {
    let p = std::env::temp_dir().join(format!("qs-fuzz-store-{}.sqlite", std::process::id()));
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
    }
    if std::fs::write(&p, data).is_err() {
        return;
    }
    if let Ok((s, _spec)) = Store::open_existing(&p) {
        let _ = s.models();
        let _ = s.trials();
        let _ = s.features();
        let _ = s.check_readable();
        let _ = s.finished();
    }
});
