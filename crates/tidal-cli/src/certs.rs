//! `tidal certs`: a cluster CA and the certificates it issues.
//!
//! - `init --dir DIR` makes the CA: `DIR/ca.crt` and `DIR/ca.key`.
//! - `node --id N --dir DIR` issues node N's certificate into its own
//!   directory (`DIR/node-N` unless `--out`): `ca.crt`, `node.crt` and
//!   `node.key`, everything `tidal node --certs-dir` reads.
//! - `client --name NAME --dir DIR` issues `DIR/client.NAME.crt` and
//!   `.key`, which the CLI shows the admin API (`--certs-dir DIR`).
//!
//! A certificate names its holder in a URI subject alternative name
//! (`tidal://CLUSTER/node/N`, `tidal://CLUSTER/client/NAME`, see
//! `tidal_node::tls::Identity`); the CA's names the cluster
//! (`tidal://CLUSTER/ca`). Keys are ECDSA P-256 and written readable by
//! their owner only. Nothing is overwritten without `--overwrite`.

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use tidal_node::tls::{self, Identity};

#[derive(clap::Args)]
pub struct CertsArgs {
    #[command(subcommand)]
    cmd: CertsCmd,
}

#[derive(clap::Subcommand)]
enum CertsCmd {
    /// Create a cluster CA: DIR/ca.crt and DIR/ca.key.
    Init {
        #[arg(long)]
        dir: PathBuf,
        /// The cluster's name, which every certificate it issues carries.
        #[arg(long, default_value = "tidal")]
        cluster: String,
        /// Days the CA is valid.
        #[arg(long, default_value_t = 3650)]
        days: u32,
        #[arg(long)]
        overwrite: bool,
    },
    /// Issue node ID's certificate: ca.crt, node.crt and node.key in OUT.
    Node {
        #[arg(long)]
        id: u64,
        /// The CA's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Where to write (default DIR/node-ID).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Host names and IP addresses the node is reached at, comma
        /// separated (besides localhost, 127.0.0.1 and ::1).
        #[arg(long, value_delimiter = ',')]
        host: Vec<String>,
        #[arg(long, default_value_t = 1825)]
        days: u32,
        #[arg(long)]
        overwrite: bool,
    },
    /// Issue a client certificate for an operator or a tool:
    /// DIR/client.NAME.crt and DIR/client.NAME.key.
    Client {
        #[arg(long)]
        name: String,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 1825)]
        days: u32,
        #[arg(long)]
        overwrite: bool,
    },
}

pub fn run(args: CertsArgs) -> i32 {
    let r = match args.cmd {
        CertsCmd::Init { dir, cluster, days, overwrite } => init(&dir, &cluster, days, overwrite).map(|()| {
            println!(
                "CA of cluster '{cluster}': {} and {}",
                dir.join(tls::CA_CERT).display(),
                dir.join(CA_KEY).display()
            );
        }),
        CertsCmd::Node { id, dir, out, host, days, overwrite } => {
            let out = out.unwrap_or_else(|| node_dir(&dir, id));
            node(&dir, id, &out, &host, days, overwrite).map(|()| {
                println!(
                    "node {id}: {} (start it with --certs-dir {})",
                    out.join(tls::NODE_CERT).display(),
                    out.display()
                );
            })
        }
        CertsCmd::Client { name, dir, days, overwrite } => client(&dir, &name, days, overwrite).map(|()| {
            println!("client {name}: {}", dir.join(tls::client_cert_file(&name)).display());
        }),
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            crate::EXIT_USAGE
        }
    }
}

/// The CA's key, next to its certificate.
pub const CA_KEY: &str = "ca.key";

/// Where `tidal certs node` writes node `id`'s directory by default.
pub fn node_dir(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("node-{id}"))
}

/// Hosts every node certificate names: a local cluster's addresses.
const LOCAL_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

fn validity(params: &mut CertificateParams, days: u32) -> Result<(), String> {
    if days == 0 || days > 36_500 {
        return Err(format!("--days: must be in 1..=36500, got {days}"));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?;
    let now = time::OffsetDateTime::from_unix_timestamp(now.as_secs() as i64).map_err(|e| e.to_string())?;
    // An hour back, for clocks a little behind this one.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(i64::from(days));
    Ok(())
}

fn uri(s: String) -> Result<SanType, String> {
    Ok(SanType::URI(s.try_into().map_err(|e| format!("{e:?}"))?))
}

fn name(cn: String) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// Write `text` to `path`, refusing to replace a file unless `overwrite`;
/// keys are readable by their owner only.
fn write(path: &Path, text: &str, secret: bool, overwrite: bool) -> Result<(), String> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true);
    if overwrite {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => format!("{} exists (--overwrite replaces it)", path.display()),
        _ => format!("{}: {e}", path.display()),
    })?;
    f.write_all(text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

fn check_name(what: &str, s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!("{what}: '{s}' must be 1-64 letters, digits, '-', '_' or '.'"))
    }
}

/// Create the CA of cluster `cluster` in `dir`.
pub fn init(dir: &Path, cluster: &str, days: u32, overwrite: bool) -> Result<(), String> {
    check_name("--cluster", cluster)?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut params = CertificateParams::default();
    validity(&mut params, days)?;
    params.distinguished_name = name(format!("tidal CA ({cluster})"));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.subject_alt_names = vec![uri(format!("tidal://{cluster}/ca"))?];
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    write(&dir.join(CA_KEY), &key.serialize_pem(), true, overwrite)?;
    write(&dir.join(tls::CA_CERT), &cert.pem(), false, overwrite)
}

/// The CA in `dir`: its certificate's PEM, an issuer, and its cluster.
fn load_ca(dir: &Path) -> Result<(String, Issuer<'static, KeyPair>, String), String> {
    let cert_path = dir.join(tls::CA_CERT);
    let key_path = dir.join(CA_KEY);
    let pem = std::fs::read_to_string(&cert_path)
        .map_err(|e| format!("{}: {e} (tidal certs init --dir {} makes a CA)", cert_path.display(), dir.display()))?;
    let key_pem = std::fs::read_to_string(&key_path).map_err(|e| format!("{}: {e}", key_path.display()))?;
    let key = KeyPair::from_pem(&key_pem).map_err(|e| format!("{}: not a private key: {e}", key_path.display()))?;
    let der = tls::read_certs(&cert_path).map_err(|e| e.to_string())?;
    let cluster = tls::ca_cluster(&der[0]).map_err(|e| format!("{}: {e}", cert_path.display()))?;
    let issuer = Issuer::from_ca_cert_pem(&pem, key).map_err(|e| format!("{}: {e}", cert_path.display()))?;
    Ok((pem, issuer, cluster))
}

/// Issue node `id`'s certificate into `out`, with the CA's certificate.
pub fn node(dir: &Path, id: u64, out: &Path, hosts: &[String], days: u32, overwrite: bool) -> Result<(), String> {
    if id == 0 {
        return Err("--id: must be greater than 0".into());
    }
    let (ca_pem, issuer, cluster) = load_ca(dir)?;
    let mut names: Vec<String> = LOCAL_HOSTS.iter().map(|h| h.to_string()).collect();
    for h in hosts {
        if !names.contains(h) {
            names.push(h.clone());
        }
    }
    let mut params = CertificateParams::new(names).map_err(|e| format!("--host: {e}"))?;
    validity(&mut params, days)?;
    params.distinguished_name = name(format!("tidal node {id}"));
    params.subject_alt_names.push(uri(Identity::Node { cluster, id }.uri())?);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.signed_by(&key, &issuer).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    write(&out.join(tls::NODE_KEY), &key.serialize_pem(), true, overwrite)?;
    write(&out.join(tls::NODE_CERT), &cert.pem(), false, overwrite)?;
    if out.join(tls::CA_CERT) != dir.join(tls::CA_CERT) {
        write(&out.join(tls::CA_CERT), &ca_pem, false, overwrite)?;
    }
    Ok(())
}

/// Issue client `name`'s certificate into `dir`, next to the CA.
pub fn client(dir: &Path, client: &str, days: u32, overwrite: bool) -> Result<(), String> {
    check_name("--name", client)?;
    let (_, issuer, cluster) = load_ca(dir)?;
    let mut params = CertificateParams::default();
    validity(&mut params, days)?;
    params.distinguished_name = name(format!("tidal client {client}"));
    params.subject_alt_names = vec![uri(Identity::Client { cluster, name: client.to_string() }.uri())?];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.signed_by(&key, &issuer).map_err(|e| e.to_string())?;
    write(&dir.join(tls::client_key_file(client)), &key.serialize_pem(), true, overwrite)?;
    write(&dir.join(tls::client_cert_file(client)), &cert.pem(), false, overwrite)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        std::env::temp_dir().join(format!("tidal-certs-{tag}-{}-{t}", std::process::id()))
    }

    #[test]
    fn a_node_directory_loads_and_names_its_node() {
        let dir = tmp("node");
        init(&dir, "test-cluster", 30, false).unwrap();
        node(&dir, 4, &node_dir(&dir, 4), &["db4.example".into()], 30, false).unwrap();
        client(&dir, "root", 30, false).unwrap();
        let tls = tidal_node::tls::Tls::load(&node_dir(&dir, 4)).unwrap();
        assert_eq!(tls.identity(), &Identity::Node { cluster: "test-cluster".into(), id: 4 });
        let c = tls::read_certs(&dir.join(tls::client_cert_file("root"))).unwrap();
        assert_eq!(
            Identity::of_cert(&c[0]).unwrap(),
            Identity::Client { cluster: "test-cluster".into(), name: "root".into() }
        );
        // Nothing is replaced by accident.
        assert!(init(&dir, "test-cluster", 30, false).unwrap_err().contains("exists"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(node_dir(&dir, 4).join(tls::NODE_KEY)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "a key is readable by its owner only");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_reload_takes_changed_files_and_refuses_another_node() {
        let dir = tmp("reload");
        init(&dir, "c", 30, false).unwrap();
        let n1 = node_dir(&dir, 1);
        node(&dir, 1, &n1, &[], 30, false).unwrap();
        let tls = tidal_node::tls::Tls::load(&n1).unwrap();
        assert!(!tls.reload().unwrap(), "nothing changed");
        node(&dir, 1, &n1, &[], 30, true).unwrap();
        assert!(tls.reload().unwrap(), "a new certificate is taken");
        assert!(!tls.reload().unwrap());
        // Node 2's certificate in node 1's directory: refused, node 1's stays.
        node(&dir, 2, &n1, &[], 30, true).unwrap();
        let e = tls.reload().unwrap_err().to_string();
        assert!(e.contains("node 2") && e.contains("this node is node 1"), "{e}");
        assert_eq!(tls.identity(), &Identity::Node { cluster: "c".into(), id: 1 });
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_that_cannot_serve_is_refused_at_load() {
        let dir = tmp("bad");
        init(&dir, "c1", 30, false).unwrap();
        node(&dir, 1, &node_dir(&dir, 1), &[], 30, false).unwrap();
        // A client's certificate is not a node's.
        client(&dir, "ops", 30, false).unwrap();
        let n1 = node_dir(&dir, 1);
        std::fs::copy(dir.join(tls::client_cert_file("ops")), n1.join(tls::NODE_CERT)).unwrap();
        std::fs::copy(dir.join(tls::client_key_file("ops")), n1.join(tls::NODE_KEY)).unwrap();
        let e = tidal_node::tls::Tls::load(&n1).unwrap_err().to_string();
        assert!(e.contains("not of a node"), "{e}");
        // A node certificate from another CA does not chain to this one.
        let other = tmp("other");
        init(&other, "c1", 30, false).unwrap();
        node(&other, 1, &node_dir(&other, 1), &[], 30, false).unwrap();
        std::fs::copy(node_dir(&other, 1).join(tls::NODE_CERT), n1.join(tls::NODE_CERT)).unwrap();
        std::fs::copy(node_dir(&other, 1).join(tls::NODE_KEY), n1.join(tls::NODE_KEY)).unwrap();
        let e = tidal_node::tls::Tls::load(&n1).unwrap_err().to_string();
        assert!(e.contains("is not valid under"), "{e}");
        // A key that is not the certificate's.
        node(&dir, 1, &n1, &[], 30, true).unwrap();
        std::fs::copy(node_dir(&other, 1).join(tls::NODE_KEY), n1.join(tls::NODE_KEY)).unwrap();
        let e = tidal_node::tls::Tls::load(&n1).unwrap_err().to_string();
        assert!(e.contains("do not go together"), "{e}");
        // A file that is not PEM.
        std::fs::write(n1.join(tls::CA_CERT), "garbage").unwrap();
        let e = tidal_node::tls::Tls::load(&n1).unwrap_err().to_string();
        assert!(e.contains("ca.crt"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&other).unwrap();
    }
}
