use super::*;

/// A copy or delta piece counts as landed only when its proposal applied.
/// A leader that lost its leadership mid-step answers `NotLeader` for the
/// pieces still in flight: counting that as done let a copy's cursor pass
/// rows the target never committed, and the move lost them.
#[test]
fn only_an_applied_proposal_lands() {
    assert!(step_failed(KvResponse::Applied(7)).is_none());
    for r in [
        KvResponse::NotLeader { leader: Some(2) },
        KvResponse::NotLeader { leader: None },
        KvResponse::Refused("slot 3 is not importing".into()),
        KvResponse::Ambiguous("no quorum".into()),
        KvResponse::Unavailable("stopping".into()),
        KvResponse::Fenced,
        KvResponse::StaleEpoch { current: 4 },
    ] {
        let what = format!("{r:?}");
        assert!(step_failed(r).is_some(), "{what} must fail the step");
    }
}

#[tokio::test]
async fn a_copy_proposal_that_stopped_fails_the_step() {
    let mut set = tokio::task::JoinSet::new();
    set.spawn(async { KvResponse::NotLeader { leader: None } });
    assert!(matches!(failed(set.join_next().await), Some(KvResponse::NotLeader { .. })));
    let mut set = tokio::task::JoinSet::new();
    set.spawn(std::future::pending::<KvResponse>());
    set.abort_all();
    assert!(matches!(failed(set.join_next().await), Some(KvResponse::Unavailable(_))));
    assert!(failed(None).is_none());
}
