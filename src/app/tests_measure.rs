//! The Laws view fits the measure the user picks (ΔL or KL; mean, median or best of T), names
//! it, and weights the points by their standard errors.

use super::laws::LawsPanel;
use super::laws_data::demo_store;
use crate::search::export::read_store;
use crate::search::{Metric, Statistic};
use crate::session::LawsState;

#[test]
fn the_laws_view_fits_kl_or_the_best_of_t_when_asked_and_says_so() {
    let st = LawsState {
        bootstrap: 0,
        ..LawsState::default()
    };
    let mut p = LawsPanel::new(st, crate::jobs::no_waker());
    assert!(p.error.is_none(), "{:?}", p.error);
    assert!(
        p.data_note().contains("ΔL, mean over trials"),
        "{}",
        p.data_note()
    );
    let slice = p.st.store_slice.clone().expect("a slice of the demo store");
    let summary = read_store(&demo_store()).unwrap().summary;
    let mut want: Vec<f64> = summary
        .iter()
        .filter(|c| crate::laws::data::StoreSlice::of(c) == slice)
        .filter(|c| {
            p.st.store_family
                .only()
                .is_none_or(|f| c.architecture.as_deref() == Some(f))
        })
        .map(|c| c.kl_best)
        .collect();
    p.set_measure((Metric::Kl, Statistic::Best));
    assert!(
        p.data_note().contains("KL, best of T trials"),
        "{}",
        p.data_note()
    );
    let mut got = p.data().y.clone();
    want.sort_by(f64::total_cmp);
    got.sort_by(f64::total_cmp);
    assert_eq!(got, want, "the points are the slice's best KL");
    assert!(p.data().se.iter().all(|s| s.is_finite() || s.is_nan()));
    // The choice is part of the session.
    assert_eq!((p.st.metric, p.st.statistic), (Metric::Kl, Statistic::Best));
}
