//! Identifiers shared by every layer: nodes, tenants, partition Raft groups.
//!
//! A Raft group is named by a [`GroupId`]: either the control plane `_cp` or a
//! PRG `tenant:index`. The string form is what appears on the wire, in storage
//! keys and in the admin API, so it is stable.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A node's id: unique in a cluster, chosen by the operator (`--node-id`).
pub type NodeId = u64;

/// The name of the control plane's Raft group.
pub const CP_GROUP: &str = "_cp";

/// The tenant every cluster starts with; RESP clients use it.
pub const DEFAULT_TENANT: &str = "default";

/// A partition Raft group: the `index`-th PRG of `tenant`. Serialized as
/// its string form `tenant:index`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct PrgId {
    pub tenant: String,
    pub index: u32,
}

impl PrgId {
    pub fn new(tenant: impl Into<String>, index: u32) -> Self {
        Self { tenant: tenant.into(), index }
    }
}

impl fmt::Display for PrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.tenant, self.index)
    }
}

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("invalid PRG id '{0}': expected tenant:index")]
    Prg(String),
    #[error("invalid tenant name '{0}': use 1-64 characters from [A-Za-z0-9_-]")]
    Tenant(String),
}

impl From<PrgId> for String {
    fn from(p: PrgId) -> String {
        p.to_string()
    }
}

impl TryFrom<String> for PrgId {
    type Error = IdError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl FromStr for PrgId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (tenant, index) = s.rsplit_once(':').ok_or_else(|| IdError::Prg(s.to_string()))?;
        validate_tenant(tenant).map_err(|_| IdError::Prg(s.to_string()))?;
        let index = index.parse().map_err(|_| IdError::Prg(s.to_string()))?;
        Ok(Self::new(tenant, index))
    }
}

/// Tenant names become parts of storage keys and URLs, so they are kept plain.
pub fn validate_tenant(name: &str) -> Result<(), IdError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(IdError::Tenant(name.to_string()))
    }
}

/// The name of any Raft group a node hosts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum GroupId {
    /// The control plane group `_cp`.
    Control,
    Prg(PrgId),
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupId::Control => f.write_str(CP_GROUP),
            GroupId::Prg(p) => p.fmt(f),
        }
    }
}

impl FromStr for GroupId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == CP_GROUP {
            Ok(GroupId::Control)
        } else {
            s.parse().map(GroupId::Prg)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prg_ids_round_trip_through_strings() {
        let id = PrgId::new("default", 3);
        assert_eq!(id.to_string(), "default:3");
        assert_eq!("default:3".parse::<PrgId>().unwrap(), id);
        assert_eq!("_cp".parse::<GroupId>().unwrap(), GroupId::Control);
        assert_eq!("a-b:0".parse::<GroupId>().unwrap(), GroupId::Prg(PrgId::new("a-b", 0)));
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in ["default", "default:", ":1", "default:x", "de fault:1", "default:-1"] {
            assert!(bad.parse::<PrgId>().is_err(), "{bad} should not parse");
        }
        assert!(validate_tenant(&"x".repeat(65)).is_err());
    }
}
