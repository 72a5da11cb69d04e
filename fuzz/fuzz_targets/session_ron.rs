//! An explorer session file (RON), and the text it saves back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quantscape::session::Session;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(s) = Session::from_ron(text, "session.ron") {
        if let Ok(back) = s.to_ron() {
            assert!(Session::from_ron(&back, "saved").is_ok(), "a saved session must load");
        }
    }
});
