//! Label selector parsing and printing: parse, match, and what prints must parse again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rkube_api::selector::LabelSelector;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(sel) = LabelSelector::parse(text) {
        let labels = [("app".to_owned(), "web".to_owned())].into_iter().collect();
        sel.matches(&labels);
        let printed = sel.to_string();
        let again = LabelSelector::parse(&printed).expect("a printed selector parses");
        assert_eq!(again.to_string(), printed);
    }
});
