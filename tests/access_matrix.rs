//! `meshgen access matrix` and `meshgen diff --access` through the real
//! binary (issue 31, points 3 and 5). The cells themselves are checked
//! against the request model in `tests/auth/matrix.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn run(dir: &Path, args: &[&str]) -> Output {
    common::run_meshgen(dir, args)
}

/// The multi-team case's tree, rendered by the binary into `dir`
/// (`tests/golden` keeps whole trees for the reference cases only).
fn multi_team_tree(dir: &Path) -> PathBuf {
    let tree = dir.join("multi-team");
    let o = run(
        dir,
        &[
            "generate",
            "-f",
            repo(MULTI_TEAM).to_str().unwrap(),
            "-o",
            tree.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    tree
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const MULTI_TEAM: &str = "tests/cases/multi-team/values.yaml";

#[test]
fn the_matrix_of_a_tree_in_three_formats() {
    let dir = tempfile::tempdir().unwrap();
    let golden = multi_team_tree(dir.path());
    let golden = golden.to_str().unwrap();
    let table = run(dir.path(), &["access", "matrix", "--tree", golden]);
    assert_eq!(table.status.code(), Some(0), "{}", err(&table));
    let text = out(&table);
    assert!(text.starts_with("TARGET "), "{text}");
    // carol is a member of kf-research by the `analysts` group: view, no
    // notebooks; bob's most permissive membership wins.
    let line = |subject: &str, target: &str| {
        text.lines()
            .find(|l| l.contains(subject) && l.starts_with(&format!("profile {target} ")))
            .unwrap_or_else(|| panic!("no row {subject} in {target}:\n{text}"))
            .split_whitespace()
            .skip(4)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        line("user carol@example.com", "kf-research"),
        ["view", "no", "yes"]
    );
    assert_eq!(
        line("user bob@example.com", "kf-research"),
        ["edit", "yes", "yes"]
    );
    assert_eq!(
        line("user alice@example.com", "kf-research"),
        ["admin", "yes", "yes"]
    );
    assert!(!text.contains("profile kf-sandbox    user alice"), "{text}");

    let json = run(
        dir.path(),
        &["access", "matrix", "--tree", golden, "--format", "json"],
    );
    assert_eq!(json.status.code(), Some(0), "{}", err(&json));
    let v: serde_json::Value = serde_json::from_str(&out(&json)).unwrap();
    let carol = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["subject"]["name"] == "carol@example.com" && r["target"]["name"] == "kf-research"
        })
        .unwrap();
    assert_eq!(carol["api"]["level"], "yes");
    assert_eq!(
        carol["api"]["by"][0],
        "AuthorizationPolicy/kf-research/profile-access"
    );
    assert_eq!(carol["notebooks"], serde_json::Value::Null);
    assert_eq!(
        carol["role"]["by"][0],
        "RoleBinding/kf-research/members-kubeflow-view"
    );

    let csv = run(
        dir.path(),
        &["access", "matrix", "--tree", golden, "--format", "csv"],
    );
    let text = out(&csv);
    assert!(text.starts_with("target_kind,target,subject_kind,subject,api,notebooks,role,by\n"));
    assert!(
        text.contains("\nprofile,kf-research,user,carol@example.com,yes,no,view,AuthorizationPolicy/kf-research/profile-access RoleBinding/kf-research/members-kubeflow-view\n"),
        "{text}"
    );
}

/// From values, the matrix is the one of the tree they render.
#[test]
fn the_matrix_from_values_is_the_matrix_of_their_tree() {
    let dir = tempfile::tempdir().unwrap();
    let values = repo(MULTI_TEAM);
    let from_values = run(
        dir.path(),
        &[
            "access",
            "matrix",
            "-f",
            values.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(from_values.status.code(), Some(0), "{}", err(&from_values));
    let golden = multi_team_tree(dir.path());
    let from_tree = run(
        dir.path(),
        &[
            "access",
            "matrix",
            "--tree",
            golden.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(out(&from_values), out(&from_tree));
    // --tree and values do not mix.
    let both = run(
        dir.path(),
        &[
            "access",
            "matrix",
            "--tree",
            "x",
            "-f",
            values.to_str().unwrap(),
        ],
    );
    assert_eq!(both.status.code(), Some(2), "{}", err(&both));
}

/// A manifest given with --with counts; a kind the matrix does not model
/// is reported, not ignored; a user string can not drive the terminal.
#[test]
fn with_other_manifests_unmodelled_kinds_are_reported_and_names_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra.yaml");
    std::fs::write(
        &extra,
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-all, namespace: kf-research}\nspec: {podSelector: {}}\n---\n\
apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: extra, namespace: kf-research}\n\
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kubeflow-edit}\n\
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: \"eve\\e[31m@example.com\"}]\n",
    )
    .unwrap();
    let golden = multi_team_tree(dir.path());
    let o = run(
        dir.path(),
        &[
            "access",
            "matrix",
            "--tree",
            golden.to_str().unwrap(),
            "--with",
            extra.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    // The matrix does not read NetworkPolicies (the request model does:
    // `meshgen access explain`); it names them, the one given first.
    assert!(
        err(&o)
            .lines()
            .any(|l| l.starts_with("notice[not-modelled]: not modelled: ")
                && l.contains(" NetworkPolicy (NetworkPolicy/kf-research/deny-all, ")),
        "{}",
        err(&o)
    );
    let text = out(&o);
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(text.contains("user eve\\u{1b}[31m@example.com"), "{text}");
    // With values too.
    let values = repo(MULTI_TEAM);
    let o = run(
        dir.path(),
        &[
            "access",
            "matrix",
            "-f",
            values.to_str().unwrap(),
            "--with",
            extra.to_str().unwrap(),
            "--format",
            "csv",
        ],
    );
    assert!(out(&o).contains("profile,kf-research,user,eve\u{1b}[31m@example.com,no,no,edit,RoleBinding/kf-research/extra\n"), "{}", out(&o));
}

#[test]
fn a_tree_that_can_not_be_read_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("t")).unwrap();
    std::fs::write(dir.path().join("t/bad.yaml"), "a: [\n").unwrap();
    let o = run(dir.path(), &["access", "matrix", "--tree", "t"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).starts_with("error[access]: not YAML: "),
        "{}",
        err(&o)
    );
    assert!(err(&o).contains(" --> t/bad.yaml:2:1\n"), "{}", err(&o));
    assert!(
        err(&o).ends_with("meshgen: 1 error; no access was computed\n"),
        "{}",
        err(&o)
    );
}

/// `diff --access`: one line per change; `--exit-code` fails on widened
/// access only.
#[test]
fn diff_access_prints_each_change_and_fails_only_on_widened_access() {
    let dir = tempfile::tempdir().unwrap();
    let values = repo(MULTI_TEAM);
    let values = values.to_str().unwrap();
    let gen = run(dir.path(), &["generate", "-f", values, "-o", "out"]);
    assert_eq!(gen.status.code(), Some(0), "{}", err(&gen));
    let diff = |sets: &[&str]| {
        let mut args = vec!["diff", "--access", "--exit-code", "-f", values, "-o", "out"];
        for s in sets {
            args.extend(["--set", s]);
        }
        run(dir.path(), &args)
    };
    let same = diff(&[]);
    assert_eq!(same.status.code(), Some(0), "{}", err(&same));
    assert_eq!(out(&same), "");
    assert!(
        err(&same).ends_with("no change of access\n"),
        "{}",
        err(&same)
    );

    let wider =
        diff(&["deploykf_core.deploykf_profiles_generator.profiles[2].members[0].user=carol"]);
    assert_eq!(wider.status.code(), Some(1), "{}", err(&wider));
    assert_eq!(
        out(&wider),
        "user carol@example.com: api of profile kf-sandbox: denied → allowed, by AuthorizationPolicy/kf-sandbox/profile-access\n\
user carol@example.com: role of profile kf-sandbox: no role → view, by RoleBinding/kf-sandbox/members-kubeflow-view\n"
    );
    assert!(
        err(&wider).ends_with("2 changes of access, 2 widened\n"),
        "{}",
        err(&wider)
    );

    // bob: edit → view in kf-analytics (his notebooks stay, by the group).
    let narrower = diff(&[
        "deploykf_core.deploykf_profiles_generator.profiles[1].members[1].access.role=view",
    ]);
    assert_eq!(narrower.status.code(), Some(0), "{}", err(&narrower));
    assert_eq!(
        out(&narrower),
        "user bob@example.com: role of profile kf-analytics: edit → view, by RoleBinding/kf-analytics/members-kubeflow-view\n"
    );
    assert!(
        err(&narrower).ends_with("1 change of access, 0 widened\n"),
        "{}",
        err(&narrower)
    );
}

const TWO_GATEWAYS: &str = "tests/cases/two-gateways/values.yaml";

/// The rows of a JSON matrix whose target is `target` and subject `kind
/// name`: (the gateway it comes through, `""` for none; the row).
fn rows_of<'a>(
    v: &'a serde_json::Value,
    target: &str,
    kind: &str,
    name: &str,
) -> Vec<(String, &'a serde_json::Value)> {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            format!(
                "{} {}",
                r["target"]["kind"].as_str().unwrap(),
                r["target"]["name"].as_str().unwrap()
            ) == target
                && r["subject"]["kind"] == kind
                && r["subject"]["name"] == name
        })
        .map(|r| {
            (
                r["subject"]["via"].as_str().unwrap_or_default().to_string(),
                r,
            )
        })
        .collect()
}

/// Several gateways (issue 33): on `two-gateways` the matrix has a row
/// per gateway a subject comes through: alice reaches team-a through the
/// public (`deploykf-gateway`) and the internal gateway
/// (`internal-gateway`), each app is reached only through the gateway
/// that routes it (no login at the internal one: nobody anonymous), and
/// no gateway's pods show as a workload of the profile. `diff --access`
/// names the gateway of each changed cell. Before, the matrix read the
/// primary gateway only: one row for alice, the internal gateway's
/// principal a `workload`, and `pipelines-api` judged by the primary's
/// policies.
#[test]
fn the_matrix_covers_every_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let values = repo(TWO_GATEWAYS);
    let values = values.to_str().unwrap();
    let json = run(
        dir.path(),
        &["access", "matrix", "-f", values, "--format", "json"],
    );
    assert_eq!(json.status.code(), Some(0), "{}", err(&json));
    let text = out(&json);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let alice = rows_of(&v, "profile team-a", "user", "alice@example.com");
    let vias: Vec<&str> = alice.iter().map(|(via, _)| via.as_str()).collect();
    assert_eq!(vias, ["deploykf-gateway", "internal-gateway"], "{text}");
    for (via, row) in &alice {
        assert_eq!(row["api"]["level"], "yes", "{via}: {row}");
        assert_eq!(row["role"]["level"], "edit", "{via}: {row}");
    }
    assert!(
        !text.contains("\"sa/internal-gateway\"") && !text.contains("sa/internal-gateway\","),
        "a gateway's pods as a workload subject:\n{text}"
    );
    for (app, via) in [
        ("app dashboard", "deploykf-gateway"),
        ("app status", "deploykf-gateway"),
        ("app pipelines-api", "internal-gateway"),
    ] {
        let rows: Vec<&serde_json::Value> = v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| format!("app {}", r["target"]["name"].as_str().unwrap()) == app)
            .collect();
        assert!(!rows.is_empty(), "no row of {app}:\n{text}");
        for r in rows {
            assert_eq!(r["subject"]["via"], via, "{app}: {r}");
        }
    }
    assert_eq!(
        rows_of(&v, "app status", "anonymous", "*").len(),
        1,
        "{text}"
    );
    // No login page at the internal gateway: neither anonymous nor a
    // browser's session reaches its app, only a token.
    for kind in ["anonymous", "any-user"] {
        assert!(
            rows_of(&v, "app pipelines-api", kind, "*").is_empty(),
            "{kind}: {text}"
        );
    }

    // The table names the gateway after the subject.
    let table = run(dir.path(), &["access", "matrix", "-f", values]);
    assert!(
        out(&table).contains("user alice@example.com via internal-gateway"),
        "{}",
        out(&table)
    );

    let gen = run(dir.path(), &["generate", "-f", values, "-o", "out"]);
    assert_eq!(gen.status.code(), Some(0), "{}", err(&gen));
    let narrower = run(
        dir.path(),
        &[
            "diff",
            "--access",
            "--exit-code",
            "-f",
            values,
            "-o",
            "out",
            "--set",
            "deploykf_core.deploykf_profiles_generator.profiles[0].members[0].access.role=view",
        ],
    );
    assert_eq!(narrower.status.code(), Some(0), "{}", err(&narrower));
    assert_eq!(
        out(&narrower),
        "user alice@example.com via deploykf-gateway: role of profile team-a: edit → view, by RoleBinding/team-a/members-kubeflow-view\n\
user alice@example.com via internal-gateway: role of profile team-a: edit → view, by RoleBinding/team-a/members-kubeflow-view\n"
    );
    // Adding the internal gateway to a tree with the public one only:
    // the public gateway's rows keep their keys, so the change is the
    // internal gateway's rows alone.
    let case = std::fs::read_to_string(repo(TWO_GATEWAYS)).unwrap();
    let (head, rest) = case.split_once("    additionalGateways:").unwrap();
    let tail = &rest[rest.find("  deploykf_profiles_generator:").unwrap()..];
    std::fs::write(dir.path().join("one.yaml"), format!("{head}{tail}")).unwrap();
    let gen = run(dir.path(), &["generate", "-f", "one.yaml", "-o", "one"]);
    assert_eq!(gen.status.code(), Some(0), "{}", err(&gen));
    let added = run(
        dir.path(),
        &["diff", "--access", "--exit-code", "-f", values, "-o", "one"],
    );
    assert_eq!(added.status.code(), Some(1), "{}", err(&added));
    let lines: Vec<String> = out(&added).lines().map(String::from).collect();
    assert_eq!(lines.len(), 8, "{lines:#?}");
    assert!(
        lines.iter().all(|l| l.contains(" via internal-gateway: ")),
        "{lines:#?}"
    );
}
