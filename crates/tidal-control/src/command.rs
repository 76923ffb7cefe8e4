//! Commands of the control-plane log and how each changes the cluster
//! state. Pure: [`apply`] is the whole meaning of a `_cp` entry.

use serde::{Deserialize, Serialize};
use tidal_core::ids::validate_tenant;
use tidal_core::placement::place_new;
use tidal_core::{ClusterState, NodeId, NodeInfo, PrgId, Tenant};

/// Largest slot count a tenant may have.
pub const MAX_SLOTS: u32 = 16_384;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CpCommand {
    /// Add a node, or update its addresses and zone. Idempotent.
    RegisterNode(NodeInfo),
    /// Create a tenant with `prgs` PRGs placed on the registered nodes, and
    /// publish the routing at a new epoch. Creating an existing tenant with
    /// the same shape is a no-op; with another shape it is refused.
    CreateTenant { name: String, slots: u32, prgs: u32 },
    /// Record which node leads a PRG (a hint for routers; no epoch bump).
    LeaderHint { prg: PrgId, leader: NodeId },
    /// Record the members of `_cp`.
    SetCpMembers(Vec<NodeId>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CpReply {
    Ok { version: u64, routing_epoch: u64 },
    Refused(String),
}

/// Apply `cmd` to `state`. A refused command changes nothing.
pub fn apply(state: &mut ClusterState, cmd: &CpCommand) -> CpReply {
    let refused = match cmd {
        CpCommand::RegisterNode(info) => {
            state.nodes.insert(info.id, info.clone());
            None
        }
        CpCommand::CreateTenant { name, slots, prgs } => create_tenant(state, name, *slots, *prgs).err(),
        CpCommand::LeaderHint { prg, leader } => {
            if let Some(p) = state.placements.get_mut(prg) {
                if p.members.contains(leader) {
                    p.leader_hint = Some(*leader);
                }
            }
            None
        }
        CpCommand::SetCpMembers(m) => {
            state.cp_members = m.clone();
            None
        }
    };
    match refused {
        Some(why) => CpReply::Refused(why),
        None => {
            state.version += 1;
            CpReply::Ok { version: state.version, routing_epoch: state.routing_epoch }
        }
    }
}

fn create_tenant(state: &mut ClusterState, name: &str, slots: u32, prgs: u32) -> Result<(), String> {
    validate_tenant(name).map_err(|e| e.to_string())?;
    if slots == 0 || slots > MAX_SLOTS {
        return Err(format!("tenant slots must be in 1..={MAX_SLOTS}, got {slots}"));
    }
    if prgs == 0 || prgs > slots {
        return Err(format!("tenant PRGs must be in 1..={slots} (its slot count), got {prgs}"));
    }
    if let Some(t) = state.tenants.get(name) {
        let have = state.prgs_of(name).len() as u32;
        return if t.slots == slots && have == prgs {
            Ok(())
        } else {
            Err(format!("tenant '{name}' exists with {} slots and {have} PRGs", t.slots))
        };
    }
    let epoch = state.routing_epoch + 1;
    let ids: Vec<PrgId> = (0..prgs).map(|i| PrgId::new(name, i)).collect();
    let placed = place_new(&state.nodes, &state.placements, &ids, epoch).map_err(|e| e.to_string())?;
    for p in placed {
        state.placements.insert(p.prg.clone(), p);
    }
    state.tenants.insert(name.to_string(), Tenant::new(name, slots, prgs));
    state.routing_epoch = epoch;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidal_core::NodeState;

    fn node(id: NodeId) -> NodeInfo {
        NodeInfo {
            id,
            peer_addr: format!("127.0.0.1:{}", 7000 + id),
            client_addr: format!("127.0.0.1:{}", 6000 + id),
            http_addr: format!("127.0.0.1:{}", 8000 + id),
            zone: "local".into(),
            state: NodeState::Active,
        }
    }

    fn with_nodes(n: u64) -> ClusterState {
        let mut s = ClusterState::default();
        for i in 1..=n {
            assert!(matches!(apply(&mut s, &CpCommand::RegisterNode(node(i))), CpReply::Ok { .. }));
        }
        s
    }

    #[test]
    fn creating_a_tenant_places_prgs_and_bumps_the_epoch() {
        let mut s = with_nodes(3);
        let r = apply(&mut s, &CpCommand::CreateTenant { name: "default".into(), slots: 1024, prgs: 4 });
        assert_eq!(r, CpReply::Ok { version: 4, routing_epoch: 1 });
        assert_eq!(s.prgs_of("default").len(), 4);
        assert!(s.placements.values().all(|p| p.epoch == 1 && p.members.len() == 3));
        // Same shape again: accepted, no new epoch.
        let r = apply(&mut s, &CpCommand::CreateTenant { name: "default".into(), slots: 1024, prgs: 4 });
        assert_eq!(r, CpReply::Ok { version: 5, routing_epoch: 1 });
    }

    #[test]
    fn invalid_tenants_are_refused_and_change_nothing() {
        let mut s = with_nodes(3);
        let before = s.clone();
        for (name, slots, prgs) in [("bad name", 8, 1), ("t", 0, 1), ("t", 8, 0), ("t", 8, 9), ("t", MAX_SLOTS + 1, 1)]
        {
            let r = apply(&mut s, &CpCommand::CreateTenant { name: name.into(), slots, prgs });
            assert!(matches!(r, CpReply::Refused(_)), "{name} {slots} {prgs}");
            assert_eq!(s, before);
        }
        let mut two = with_nodes(2);
        let before = two.clone();
        assert!(matches!(
            apply(&mut two, &CpCommand::CreateTenant { name: "t".into(), slots: 8, prgs: 1 }),
            CpReply::Refused(_)
        ));
        assert_eq!(two, before);
    }

    #[test]
    fn a_different_shape_for_an_existing_tenant_is_refused() {
        let mut s = with_nodes(3);
        apply(&mut s, &CpCommand::CreateTenant { name: "t".into(), slots: 64, prgs: 2 });
        let before = s.clone();
        assert!(matches!(
            apply(&mut s, &CpCommand::CreateTenant { name: "t".into(), slots: 64, prgs: 3 }),
            CpReply::Refused(_)
        ));
        assert_eq!(s, before);
    }

    #[test]
    fn leader_hints_must_name_a_member() {
        let mut s = with_nodes(4);
        apply(&mut s, &CpCommand::CreateTenant { name: "t".into(), slots: 8, prgs: 1 });
        let prg = PrgId::new("t", 0);
        let outsider = (1..=4).find(|i| !s.placements[&prg].members.contains(i)).unwrap();
        apply(&mut s, &CpCommand::LeaderHint { prg: prg.clone(), leader: outsider });
        assert_eq!(s.placements[&prg].leader_hint, None);
        let member = s.placements[&prg].members[1];
        apply(&mut s, &CpCommand::LeaderHint { prg: prg.clone(), leader: member });
        assert_eq!(s.placements[&prg].leader_hint, Some(member));
    }
}
