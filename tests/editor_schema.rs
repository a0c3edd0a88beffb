//! Issue 29: the schema `meshgen schema` prints works in an editor. A real
//! yaml-language-server (npm `yaml-language-server`, as the VS Code YAML
//! extension runs it) validates every case's values file and users' real
//! deployKF files against it: no diagnostic on any of them (before, the
//! schema of the merged values gave 43 on one file: `Missing property
//! "gitops"`, ...), and exactly one on a file with one typo.
//!
//! The server is `$MESHGEN_YAML_LS` if set, else
//! `target/tools/node_modules/.bin/yaml-language-server` (`npm install
//! --prefix target/tools yaml-language-server@1.25.0`, as `.ci/run` does),
//! else on PATH. Without it the test prints why and passes; with
//! `MESHGEN_REQUIRE_TOOLS=1` it fails.

mod common;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

fn find_server() -> Option<PathBuf> {
    let works = |p: &Path| {
        Command::new(p)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if let Some(p) = std::env::var_os("MESHGEN_YAML_LS") {
        return Some(PathBuf::from(p));
    }
    [
        common::root().join("target/tools/node_modules/.bin/yaml-language-server"),
        PathBuf::from("yaml-language-server"),
    ]
    .into_iter()
    .find(|p| works(p))
}

/// A yaml-language-server over stdio, speaking LSP.
struct Server {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
}

impl Server {
    fn start(path: &Path) -> Server {
        let mut child = Command::new(path)
            .arg("--stdio")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, messages) = channel();
        std::thread::spawn(move || loop {
            let mut length = None;
            loop {
                let mut line = String::new();
                if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some(n) = line.strip_prefix("Content-Length:") {
                    length = n.trim().parse::<usize>().ok();
                }
            }
            let mut body = vec![0; length.expect("Content-Length")];
            if stdout.read_exact(&mut body).is_err() {
                return;
            }
            if tx.send(serde_json::from_slice(&body).unwrap()).is_err() {
                return;
            }
        });
        let mut server = Server {
            child,
            stdin,
            messages,
        };
        server.send(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"processId": null, "rootUri": null, "capabilities": {}}}));
        server.wait_for(|m| m["id"] == 1);
        server.send(json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}));
        server
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next message `want` accepts; requests from the server are
    /// answered with `null` on the way.
    fn wait_for(&mut self, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self
                .messages
                .recv_timeout(left)
                .expect("yaml-language-server answered within 60 s");
            if want(&m) {
                return m;
            }
            if m.get("id").is_some() && m.get("method").is_some() {
                self.send(json!({"jsonrpc": "2.0", "id": m["id"], "result": null}));
            }
        }
    }

    /// The diagnostics of each file, validated against `schema` (given by
    /// a modeline on a first line added, as users write it, so the
    /// server's 0-based line numbers are the file's own 1-based ones).
    fn diagnostics(
        &mut self,
        schema: &Path,
        files: &[(String, String)],
    ) -> BTreeMap<String, Vec<String>> {
        let modeline = format!(
            "# yaml-language-server: $schema=file://{}\n",
            schema.display()
        );
        for (i, (name, text)) in files.iter().enumerate() {
            self.send(
                json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
                "textDocument": {"uri": format!("file:///values/{i}/{name}"), "languageId": "yaml",
                    "version": 1, "text": format!("{modeline}{text}")}}}),
            );
        }
        let mut out = BTreeMap::new();
        while out.len() < files.len() {
            let m = self.wait_for(|m| m["method"] == "textDocument/publishDiagnostics");
            let uri = m["params"]["uri"].as_str().unwrap();
            let i: usize = uri.split('/').nth(4).unwrap().parse().unwrap();
            let list = m["params"]["diagnostics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    format!(
                        "line {}: {}",
                        d["range"]["start"]["line"].as_u64().unwrap(),
                        d["message"].as_str().unwrap()
                    )
                })
                .collect();
            out.insert(files[i].0.clone(), list);
        }
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every case's values file and every user file, by a readable name.
fn values_files() -> Vec<(String, String)> {
    let mut files = Vec::new();
    for case in common::cases() {
        let p = common::root()
            .join("tests/cases")
            .join(&case)
            .join("values.yaml");
        if let Ok(text) = std::fs::read_to_string(&p) {
            files.push((format!("cases/{case}/values.yaml"), text));
        }
    }
    for rel in common::walk(&common::root().join("tests/users")) {
        if rel.extension().is_some_and(|e| e == "yaml") {
            let text =
                std::fs::read_to_string(common::root().join("tests/users").join(&rel)).unwrap();
            files.push((format!("users/{}", rel.display()), text));
        }
    }
    files.push((
        "deploykf-0.1.5/sample-values.yaml".into(),
        std::fs::read_to_string(common::root().join(common::DEPLOYKF_SAMPLE)).unwrap(),
    ));
    files
}

#[test]
fn yaml_language_server_accepts_real_values_files_and_flags_one_typo() {
    let Some(server) = find_server() else {
        let why = "yaml-language-server not found: set MESHGEN_YAML_LS, or `npm install --prefix target/tools yaml-language-server@1.25.0`";
        assert!(
            !common::helm::tools_required(),
            "{why}; MESHGEN_REQUIRE_TOOLS is set, so it is a failure"
        );
        eprintln!("skipped: {why}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let schema = |args: &[&str], name: &str| {
        let out = common::run_meshgen(dir.path(), args);
        assert!(out.status.success());
        let p = dir.path().join(name);
        std::fs::write(&p, &out.stdout).unwrap();
        p
    };
    let file_schema = schema(&["schema"], "values.schema.json");
    let merged_schema = schema(&["schema", "--merged"], "merged.schema.json");
    let mut server = Server::start(&server);

    let files = values_files();
    assert!(files.len() > 30, "{} files", files.len());
    let got = server.diagnostics(&file_schema, &files);
    let noisy: Vec<_> = got.iter().filter(|(_, d)| !d.is_empty()).collect();
    assert!(
        noisy.is_empty(),
        "diagnostics on files meshgen accepts: {noisy:#?}"
    );

    // One typo: exactly one diagnostic, on its line.
    let typo =
        "deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      hostnme: ml.example.net\n";
    let got = server.diagnostics(&file_schema, &[("typo.yaml".into(), typo.into())]);
    assert_eq!(
        got["typo.yaml"],
        ["line 4: Property hostnme is not allowed."],
        "{got:?}"
    );

    // The merged values' schema is what an editor must not be given: it
    // requires every section (the 43 false errors of issue 29).
    let got = server.diagnostics(
        &merged_schema,
        &[("typo-free.yaml".into(), typo.replace("hostnme", "hostname"))],
    );
    assert!(
        got["typo-free.yaml"]
            .iter()
            .any(|d| d.contains("Missing property")),
        "{got:?}"
    );
}
