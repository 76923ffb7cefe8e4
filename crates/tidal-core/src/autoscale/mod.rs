//! The autoscale recommender: pure decisions over plain data, time as a
//! parameter. The control-plane leader's loop (in `tidal-control`) feeds it
//! the nodes' load and carries its decisions out; the what-if simulator
//! replays a load trace through the very same code.
//!
//! ```text
//!   policy (HPA autoscaling/v2 vocabulary, validated)     ─┐
//!   samples per node (usage, capacity, ready)              ├─► hpa::desired_for_metric ─┐
//!   history (recommendations, scale events, timestamps) ──┘                            │
//!                                  max over metrics ◄─────────────────────────────────┘
//!                                        │
//!                     hpa::Recommender::normalize: stabilization windows,
//!                     scaling policies and selectPolicy, min and max
//!                                        │
//!                                        ▼
//!                       Recommendation { nodes, reason, arithmetic }
//! ```
//!
//! Where the HPA has a rule, the recommender follows it exactly, so that an
//! operator's HPA intuition (and the HPA's own test cases, ported in
//! `hpa_tests.rs`) carry over; "pods" are tidal's nodes. What a store of
//! data needs besides (PRGs per tenant from load, nodes for the replicas
//! and the data, cooldowns) is in `data.rs`.

pub mod capacity;
pub mod data;
pub mod forecast;
pub mod history;
pub mod hpa;
pub mod indicators;
pub mod journal;
pub mod policy;
pub mod recommend;
pub mod resources;
pub mod schedule;
pub mod signals;
pub mod simulate;

pub use hpa::{Recommendation, Recommender};
pub use policy::{Behavior, Policy, PolicyError, ScalingPolicy, ScalingPolicyKind, ScalingRules, SelectPolicy};
pub use recommend::{recommend, Change, Decision, Signals};
