//! Real TLS servers for tests: a throwaway PKI from the `openssl` CLI, a TLS-only
//! `redis-server` and a private PostgreSQL that accepts only TLS (`hostssl`), each on a free
//! port and stopped when dropped. The shared servers on 5432/6379 are never touched.
//!
//! A missing tool makes the constructor return `None` after printing a note — or panic
//! under `TESSERA_REQUIRE_INTEROP=1` (CI), where a skip would hide a gap.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// The newest PostgreSQL server binaries Debian installed (`/usr/lib/postgresql/<major>/bin`),
/// or the directory in `TESSERA_TEST_PG_BIN`.
fn pg_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TESSERA_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin)
}

/// Skips (returns `None`) with a message, or panics under `TESSERA_REQUIRE_INTEROP=1`.
pub fn missing<T>(what: &str) -> Option<T> {
    assert!(
        !std::env::var("TESSERA_REQUIRE_INTEROP").is_ok_and(|v| v == "1"),
        "{what} is required under TESSERA_REQUIRE_INTEROP=1"
    );
    eprintln!("skipped: {what} not available");
    None
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A throwaway CA, a server certificate it signed (SAN `127.0.0.1`, `localhost`), and a
/// second, unrelated CA that must not be trusted for that server.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Option<Pki> {
        if Command::new("openssl").arg("version").output().is_err() {
            return missing("openssl");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name);
        for ca in ["ca", "other-ca"] {
            run(Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec"])
                .args([
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN=Tessera test {ca}"),
                    "-keyout",
                ])
                .arg(p(&format!("{ca}.key")))
                .arg("-out")
                .arg(p(&format!("{ca}.pem"))));
        }
        run(Command::new("openssl")
            .args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-subj", "/CN=localhost", "-keyout"])
            .arg(p("server.key"))
            .arg("-out")
            .arg(p("server.csr")));
        std::fs::write(
            p("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n\
             basicConstraints=CA:FALSE\n",
        )
        .unwrap();
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-in"])
            .arg(p("server.csr"))
            .arg("-CA")
            .arg(p("ca.pem"))
            .arg("-CAkey")
            .arg(p("ca.key"))
            .arg("-CAcreateserial")
            .arg("-extfile")
            .arg(p("server.ext"))
            .arg("-out")
            .arg(p("server.pem")));
        Some(Pki { dir })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Kills the server when the test ends, however it ends.
pub struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for_port(port: u16, server: &mut Server, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("{what} exited early: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not listen on {port}");
}

/// A `redis-server` speaking only TLS on a free port.
pub async fn tls_redis(pki: &Pki) -> Option<(Server, u16)> {
    let port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .arg("--tls-cert-file")
        .arg(pki.path("server.pem"))
        .arg("--tls-key-file")
        .arg(pki.path("server.key"))
        .arg("--tls-ca-cert-file")
        .arg(pki.path("ca.pem"))
        .args(["--tls-auth-clients", "no", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        return missing("redis-server");
    };
    let mut server = Server(child);
    wait_for_port(port, &mut server, "redis-server").await;
    Some((server, port))
}

/// A private PostgreSQL that accepts only TLS connections (`hostssl` in pg_hba.conf) from
/// 127.0.0.1, as `postgres` with trust auth, and no Unix socket.
pub struct TlsPostgres {
    _server: Server,
    _dir: tempfile::TempDir,
    pub port: u16,
}

/// Runs a PostgreSQL program as the `postgres` user when this is root (it refuses root).
fn pg_command(bin: &Path, program: &str, root: bool) -> Command {
    let path = bin.join(program).display().to_string();
    if root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--", &path]);
        cmd
    } else {
        Command::new(path)
    }
}

pub async fn tls_postgres(pki: &Pki) -> Option<TlsPostgres> {
    let Some(bin) = pg_bin() else {
        return missing("PostgreSQL server binaries (initdb, postgres)");
    };
    let root = String::from_utf8_lossy(&run(Command::new("id").arg("-u")).stdout).trim() == "0";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The key must belong to the server's user and be private to it.
    std::fs::copy(pki.path("server.pem"), dir.path().join("server.pem")).unwrap();
    std::fs::copy(pki.path("server.key"), dir.path().join("server.key")).unwrap();
    run(Command::new("chmod")
        .arg("0600")
        .arg(dir.path().join("server.key")));
    if root {
        run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path()));
    }
    run(pg_command(&bin, "initdb", root)
        .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "-D"])
        .arg(&data)
        .stdout(Stdio::null()));
    std::fs::write(data.join("pg_hba.conf"), "hostssl all all 127.0.0.1/32 trust\n").unwrap();
    if root {
        run(Command::new("chown")
            .args(["postgres:postgres"])
            .arg(data.join("pg_hba.conf")));
    }
    let port = free_port();
    let child = pg_command(&bin, "postgres", root)
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .args([
            "-c",
            "unix_socket_directories=",
            "-c",
            "fsync=off",
            "-c",
            "ssl=on",
        ])
        .arg("-c")
        .arg(format!(
            "ssl_cert_file={}",
            dir.path().join("server.pem").display()
        ))
        .arg("-c")
        .arg(format!(
            "ssl_key_file={}",
            dir.path().join("server.key").display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    wait_for_port(port, &mut server, "postgres").await;
    // Listening is not accepting yet ("the database system is starting up").
    let deadline = Instant::now() + Duration::from_secs(15);
    while !Command::new(bin.join("pg_isready"))
        .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(Instant::now() < deadline, "postgres did not accept connections");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some(TlsPostgres {
        _server: server,
        _dir: dir,
        port,
    })
}
