//! A private PostgreSQL server for tests that stop and restart the database under load, which
//! they must never do to the shared server other tests are using. It lives in a temporary
//! directory, listens on a free loopback port and runs as the `postgres` system user (the server
//! refuses to run as root, which CI is).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A PostgreSQL server of its own; stopped and deleted when dropped.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The newest installed server's binaries (Debian: /usr/lib/postgresql/<major>/bin).
fn server_bin() -> PathBuf {
    let mut majors: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries in /usr/lib/postgresql")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    majors.sort_unstable();
    let major = majors.last().expect("an installed PostgreSQL server");
    PathBuf::from(format!("/usr/lib/postgresql/{major}/bin"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl PgCluster {
    /// Creates and starts a server (trust authentication, user `postgres`).
    pub fn start() -> PgCluster {
        let dir = tempfile::tempdir().expect("temporary directory");
        let is_root = run(Command::new("id").arg("-u")).stdout.starts_with(b"0");
        if is_root {
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()));
        }
        let cluster = PgCluster {
            dir,
            bin: server_bin(),
            port: free_port(),
        };
        cluster.as_postgres(
            Command::new(cluster.bin.join("initdb"))
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                .arg(cluster.data()),
        );
        cluster.start_server();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_postgres(&self, cmd: &mut Command) -> Output {
        let is_root = run(Command::new("id").arg("-u")).stdout.starts_with(b"0");
        if is_root {
            let mut wrapped = Command::new("runuser");
            wrapped
                .args(["-u", "postgres", "--"])
                .arg(cmd.get_program())
                .args(cmd.get_args());
            run(&mut wrapped)
        } else {
            run(cmd)
        }
    }

    /// Starts the (stopped) server and waits until it accepts connections.
    pub fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.as_postgres(
            Command::new(self.bin.join("pg_ctl"))
                .args(["-w", "-D"])
                .arg(self.data())
                .args(["-l"])
                .arg(self.dir.path().join("server.log"))
                .args(["-o", &options, "start"]),
        );
    }

    /// Stops the server at once, as a crash would (`immediate`: no checkpoint, clients cut off).
    pub fn stop_server(&self) {
        self.as_postgres(
            Command::new(self.bin.join("pg_ctl"))
                .args(["-w", "-m", "immediate", "-D"])
                .arg(self.data())
                .arg("stop"),
        );
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Where the server keeps its files.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-m", "immediate", "-D"])
            .arg(self.data())
            .arg("stop")
            .output();
    }
}
