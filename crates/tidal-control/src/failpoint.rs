//! Fail points at every step of a move and every phase of a scaling
//! operation, for tests of rollback and resume.
//!
//! They are compiled in only with the `failpoints` feature, which the
//! `tidal` binary's tests turn on; in any other build [`check`] is
//! `Ok(())` and [`configure`] refuses. A fail point is named after the step
//! it follows, `slot-move/after-<action>` (see
//! [`tidal_core::slot_move::Action::name`]) or `replica-move/after-<step>`,
//! and set with the `fail` crate's action syntax:
//!
//! - `return`: the step fails, as an unavailable PRG does once its retry
//!   budget is spent (`1*return` fails it once);
//! - `return(crash)`: the process ends on the spot, as under a SIGKILL;
//! - `sleep(ms)`, `pause`, `off`, and the `N*` / `P%` prefixes.

use crate::executor::Stop;

/// Every fail point of a slot move, in the order a move passes them.
pub const SLOT_MOVE: &[&str] = &[
    "slot-move/after-begin-export",
    "slot-move/after-begin-import",
    "slot-move/after-copy-chunk",
    "slot-move/after-copy-rows",
    "slot-move/after-become-catch-up",
    "slot-move/after-catch-up-round",
    "slot-move/after-catch-up",
    "slot-move/after-fence",
    "slot-move/after-become-fenced",
    "slot-move/after-final-delta",
    "slot-move/after-commit",
    "slot-move/after-release",
    "slot-move/after-adopt",
    "slot-move/after-become-done",
    "slot-move/after-unfence",
    "slot-move/after-drop-import",
    "slot-move/after-become-rolled-back",
];

/// Every fail point of a replica move.
pub const REPLICA_MOVE: &[&str] = &[
    "replica-move/after-add-learner",
    "replica-move/after-become-promoting",
    "replica-move/after-replace-voter",
    "replica-move/after-commit",
    "replica-move/after-remove-learner",
    "replica-move/after-become-rolled-back",
];

/// Every fail point of a scaling operation: after each phase, and the
/// health gate (`return` there makes every gate fail, as a cluster that
/// never becomes healthy does).
pub const OPERATION: &[&str] = &[
    "operation/gate",
    "operation/after-preflight",
    "operation/after-add-nodes",
    "operation/after-create-prgs",
    "operation/after-move-slots",
    "operation/after-move-replicas",
    "operation/after-leaders",
    "operation/after-validate",
];

fn known(name: &str) -> bool {
    SLOT_MOVE.contains(&name) || REPLICA_MOVE.contains(&name) || OPERATION.contains(&name)
}

/// Fail here if the fail point `name` says so.
#[cfg(feature = "failpoints")]
pub(crate) fn check(name: &str) -> Result<(), Stop> {
    debug_assert!(known(name), "unlisted fail point {name}");
    let hit = fail::eval(name, |arg| {
        if arg.as_deref() == Some("crash") {
            tracing::error!(fail_point = name, "fail point: ending the process");
            std::process::abort();
        }
        Stop::Failed(format!("fail point {name}"))
    });
    hit.map_or(Ok(()), Err)
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn check(_name: &str) -> Result<(), Stop> {
    Ok(())
}

/// Set fail point `name` to `actions` (`off` clears it).
pub fn configure(name: &str, actions: &str) -> Result<(), String> {
    if !known(name) {
        return Err(format!("no fail point named '{name}'"));
    }
    #[cfg(feature = "failpoints")]
    {
        if actions.trim() == "off" {
            fail::remove(name);
            return Ok(());
        }
        fail::cfg(name, actions)
    }
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = actions;
        Err("this binary was built without fail points (feature `failpoints`)".into())
    }
}

/// The fail points that are set, with their actions.
pub fn list() -> Vec<(String, String)> {
    #[cfg(feature = "failpoints")]
    {
        fail::list()
    }
    #[cfg(not(feature = "failpoints"))]
    {
        Vec::new()
    }
}
