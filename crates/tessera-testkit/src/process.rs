//! The real `tessera` binary as a child process: start it (optionally in a working
//! directory of the test's choosing), wait until it serves, signal it, read what it printed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound, then released for the child to take).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("cannot bind");
    listener.local_addr().expect("no local addr").port()
}

/// A running `tessera` process. Killed when dropped.
pub struct Process {
    child: Child,
    pub url: String,
    stderr_path: PathBuf,
    stdout_path: PathBuf,
    _logs: tempfile::TempDir,
}

/// How a process that ran to completion ended, and what it printed.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Process {
    /// Starts `binary serve` listening on a free port, with `envs` added to a clean
    /// `TESSERA_*`-free environment.
    pub fn serve(binary: &Path, envs: &[(&str, String)]) -> Process {
        Process::serve_with(binary, None, &["serve"], envs)
    }

    /// Like [`Process::serve`], with `dir` as the child's working directory (where the
    /// default `./tessera-data` lands).
    pub fn serve_in(binary: &Path, dir: &Path, envs: &[(&str, String)]) -> Process {
        Process::serve_with(binary, Some(dir), &["serve"], envs)
    }

    /// Starts `binary args…` (which should include `serve`) listening on a free port, in
    /// `dir` when given; `url` is set to the address it will serve on.
    pub fn serve_with(binary: &Path, dir: Option<&Path>, args: &[&str], envs: &[(&str, String)]) -> Process {
        let port = free_port();
        let mut all: Vec<(String, String)> = envs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        all.push(("TESSERA_LISTEN".into(), format!("127.0.0.1:{port}")));
        let mut process = Process::spawn(binary, dir, args, &all);
        process.url = format!("http://127.0.0.1:{port}");
        process
    }

    /// Starts `binary args…` with only `envs` (plus PATH and HOME) in its environment.
    pub fn start(binary: &Path, args: &[&str], envs: &[(String, String)]) -> Process {
        Process::spawn(binary, None, args, envs)
    }

    /// Like [`Process::start`], with `dir` as the child's working directory.
    pub fn start_in(binary: &Path, dir: &Path, args: &[&str], envs: &[(String, String)]) -> Process {
        Process::spawn(binary, Some(dir), args, envs)
    }

    /// Runs `binary args…` in `dir` to completion (killing it after `timeout`, which then
    /// panics with what it printed) and returns its exit status and output.
    pub async fn run_in(
        binary: &Path,
        dir: &Path,
        args: &[&str],
        envs: &[(String, String)],
        timeout: Duration,
    ) -> Finished {
        let mut process = Process::spawn(binary, Some(dir), args, envs);
        let Some(status) = process.wait_exit(timeout).await else {
            panic!(
                "tessera {} did not exit within {timeout:?}:\nstdout:\n{}\nstderr:\n{}",
                args.join(" "),
                process.stdout(),
                process.stderr()
            );
        };
        Finished {
            status,
            stdout: process.stdout(),
            stderr: process.stderr(),
        }
    }

    fn spawn(binary: &Path, dir: Option<&Path>, args: &[&str], envs: &[(String, String)]) -> Process {
        let logs = tempfile::tempdir().expect("temp dir");
        let stderr_path = logs.path().join("stderr.log");
        let stdout_path = logs.path().join("stdout.log");
        let stderr = std::fs::File::create(&stderr_path).expect("log file");
        let stdout = std::fs::File::create(&stdout_path).expect("log file");
        let mut command = Command::new(binary);
        command
            .args(args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        for var in ["PATH", "HOME"] {
            if let Ok(value) = std::env::var(var) {
                command.env(var, value);
            }
        }
        for (key, value) in envs {
            command.env(key, value);
        }
        let child = command.spawn().expect("cannot start tessera");
        Process {
            child,
            url: String::new(),
            stderr_path,
            stdout_path,
            _logs: logs,
        }
    }

    /// Waits until `GET /healthz` answers 200, or panics with the process output.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("tessera exited with {status} before serving:\n{}", self.stderr());
            }
            if let Ok(response) = client.get(format!("{}/healthz", self.url)).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("tessera did not serve within {timeout:?}:\n{}", self.stderr());
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`TERM`, `KILL`, …) to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit, at most `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        None
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Everything the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Waits until stderr contains `needle` (true), the process exits, or `timeout` passes
    /// (false).
    pub async fn wait_for_stderr(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline || matches!(self.child.try_wait(), Ok(Some(_))) {
                return self.stderr().contains(needle);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
