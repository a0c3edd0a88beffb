//! The command line: clap definitions (`Cli`), resolved into library
//! options, and the printing of results and diagnostics. Only this module
//! and `main.rs` use anyhow or know about exit codes.

use clap::{CommandFactory, Parser, Subcommand};
use meshgen::code::Code;
use meshgen::diagnostic::{escape_controls, Diagnostics};
use meshgen::values::{SetArg, ValueInputs};
use meshgen::Session;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

mod access;
mod fleet;

const EXAMPLES: &str = "\
Examples:
  meshgen generate -o out                          render the defaults into ./out
  meshgen generate -f my.yaml -o gitops/platform   render your values into a git repo
  meshgen generate -f my.yaml                      print the manifests to stdout
  meshgen diff -f my.yaml -o gitops/platform --exit-code
                                                   fail CI when the committed tree drifted
  meshgen generate --preset kubeflow -f my.yaml -o out
                                                   Kubeflow 26.03's applications behind meshgen
  meshgen values -f my.yaml --set deploykf_core.deploykf_istio_gateway.gateway.hostname=ml.example.com
                                                   show the merged values
  meshgen generate --fleet platform/fleet.yaml -o fleet
                                                   every cluster of a fleet, with its ApplicationSet / Flux entries
  meshgen access explain -f my.yaml --as alice@example.com GET https://deploykf.example.com/
                                                   who can reach what, and why
  meshgen access check expect.yaml --tree gitops/platform
                                                   fail CI when an expected access changed
";

#[derive(Debug, Parser)]
#[command(name = "meshgen", version = meshgen::VERSION, about = "Render the Kubernetes manifests of an Istio-based ML platform edge from a deployKF-compatible values file", after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    warnings: WarningArgs,
}

/// Which warnings a run shows, and whether one fails it (issue 33, point 4).
#[derive(Debug, clap::Args)]
struct WarningArgs {
    /// Exit with code 1 when a warning is shown (one --allow-warning
    /// names aside); `generate` then writes nothing
    #[arg(long, global = true)]
    deny_warnings: bool,
    /// Do not show the warnings (or notices) of CODE, as `self-signed-ca`
    /// (README.md, "Diagnostic codes"); repeatable
    #[arg(long = "allow-warning", value_name = "CODE", global = true, value_parser = Code::allowable)]
    allow_warning: Vec<Code>,
}

#[derive(Debug, clap::Args)]
struct ValueArgs {
    /// An embedded values layer applied after the defaults and before
    /// --values/--set (`meshgen presets` lists them)
    #[arg(long = "preset", value_name = "NAME")]
    preset: Option<String>,
    /// A values file (YAML; `-` reads standard input); repeatable, later files win
    #[arg(short = 'f', long = "values", value_name = "FILE")]
    values: Vec<PathBuf>,
    /// Set a value: PATH=VALUE[,PATH=VALUE]; applied after all files
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// Like --set, but every value is a string
    #[arg(long = "set-string", value_name = "PATH=VALUE")]
    set_string: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Render the manifest tree (to -o DIR, or to stdout as one stream)
    Generate {
        #[command(flatten)]
        values: ValueArgs,
        /// Output directory; replaced atomically (only if empty, new, or an earlier meshgen output); `-` prints the stream to stdout, as without -o
        #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
        output_dir: Option<PathBuf>,
        /// Render every cluster of a fleet file into DIR/clusters/<name>/,
        /// with the Argo CD ApplicationSet / Flux entry points beside them
        /// (needs -o DIR; `meshgen schema --fleet` prints its schema)
        #[arg(long, value_name = "FILE", conflicts_with_all = ["preset", "values", "set", "set_string"], requires = "output_dir")]
        fleet: Option<PathBuf>,
    },
    /// Print the merged, validated values (defaults included) as YAML
    Values {
        #[command(flatten)]
        values: ValueArgs,
    },
    /// Show a unified diff between what would be generated and DIR
    Diff {
        #[command(flatten)]
        values: ValueArgs,
        /// The directory to compare with
        #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
        output_dir: PathBuf,
        /// Exit with 1 when there are differences (2 when the comparison
        /// could not be made: invalid values, an unreadable DIR)
        #[arg(long)]
        exit_code: bool,
        /// Show one line per changed file (lines added and removed) and a
        /// total instead of the diff
        #[arg(long)]
        stat: bool,
        /// Print one line per change of access (who reaches which profile
        /// or app, with what) instead of the diff; with --exit-code, exit
        /// 1 only when some access widened
        #[arg(long, conflicts_with = "stat")]
        access: bool,
        /// Only these files, or directories and what is under them
        /// (relative to DIR), as `meshgen diff -o out -- manifests/deploykf-core`
        #[arg(last = true, value_name = "PATH")]
        paths: Vec<String>,
        /// Compare a fleet's output (`generate --fleet`) with DIR, cluster
        /// by cluster (--stat grouped by cluster)
        #[arg(long, value_name = "FILE", conflicts_with_all = ["preset", "values", "set", "set_string", "access"])]
        fleet: Option<PathBuf>,
    },
    /// List the presets (`--preset NAME`), one line each
    Presets,
    /// Print the JSON Schema of a values file (for editors: every key
    /// optional, as the defaults fill in the rest)
    Schema {
        /// The schema of the merged values instead (every key of the
        /// defaults required), which meshgen checks after merging
        #[arg(long)]
        merged: bool,
        /// The schema of a fleet file (`generate --fleet`) instead
        #[arg(long, conflicts_with = "merged")]
        fleet: bool,
    },
    /// Print a shell completion script
    Completions { shell: clap_complete::Shell },
    /// Who can reach what: replay requests through a tree with the request
    /// model (Istio's gateway and destination behaviour), or list who is
    /// admitted to every profile and app
    Access {
        #[command(subcommand)]
        cmd: AccessCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AccessCommand {
    /// Explain one request: the verdict (allowed, redirect, login, 401,
    /// 403, not routed) and each step that decided it, naming the object
    /// and its file
    #[command(group(clap::ArgGroup::new("who").required(true).args(["user", "service_account", "anonymous", "from_pod"])))]
    Explain {
        #[command(flatten)]
        tree: TreeArgs,
        /// A signed-in user (their email)
        #[arg(long = "as", value_name = "USER")]
        user: Option<String>,
        /// A group the identity provider gives the user; repeatable
        #[arg(long = "idp-group", value_name = "GROUP", requires = "user")]
        idp_groups: Vec<String>,
        /// A Kubernetes service account's token (machine to machine)
        #[arg(long = "service-account", value_name = "NS/SA")]
        service_account: Option<String>,
        /// No session and no token
        #[arg(long)]
        anonymous: bool,
        /// A pod of the mesh calling a Service (`http://svc.ns/...`) or connecting to a host outside the cluster (`https://pypi.org/`)
        #[arg(long = "from-pod", value_name = "NS/SA")]
        from_pod: Option<String>,
        /// The request's method, as GET
        method: String,
        /// The request's URL, as https://host/path
        url: String,
    },
    /// Check a file of expected verdicts: exit 0 when all hold, 1 listing
    /// each that fails with its trace, 2 for a malformed file
    Check {
        /// The expectations (YAML: a list of as, request, expect)
        #[arg(value_name = "EXPECT.yaml")]
        expect: PathBuf,
        #[command(flatten)]
        tree: TreeArgs,
    },
    /// For every profile and app: who is admitted (users, IdP groups,
    /// service accounts, tokens, namespaces, workloads) and with what
    /// (API, notebooks, role)
    Matrix {
        #[command(flatten)]
        tree: TreeArgs,
        /// Output format
        #[arg(long, value_enum, default_value_t = MatrixFormat::Table)]
        format: MatrixFormat,
    },
}

/// The tree the request model reads: a directory, or a render of values.
#[derive(Debug, clap::Args)]
struct TreeArgs {
    /// A tree on disk (a `meshgen generate -o` output) instead of a render
    /// of values
    #[arg(long, value_name = "DIR", conflicts_with_all = ["preset", "values", "set", "set_string"])]
    tree: Option<PathBuf>,
    #[command(flatten)]
    values: ValueArgs,
    /// Other manifests beside the tree (a YAML file, or a directory of
    /// them), e.g. Kubeflow's built applications; repeatable
    #[arg(long = "with", value_name = "PATH")]
    with: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum MatrixFormat {
    Table,
    Json,
    Csv,
}

impl ValueArgs {
    /// `--set` values apply after all files; `--set` and `--set-string`
    /// keep their relative command-line order.
    fn resolve(self, matches: &clap::ArgMatches) -> ValueInputs {
        self.resolve_in(matches.subcommand().map(|(_, m)| m))
    }

    /// [`ValueArgs::resolve`] with the matches of the (sub)command that
    /// holds them.
    fn resolve_in(self, sub: Option<&clap::ArgMatches>) -> ValueInputs {
        let index = |id: &str| -> Vec<usize> {
            sub.and_then(|m| m.indices_of(id))
                .map(|i| i.collect())
                .unwrap_or_default()
        };
        let mut sets: Vec<(usize, SetArg)> = Vec::new();
        for (i, text) in index("set").into_iter().zip(self.set) {
            sets.push((
                i,
                SetArg {
                    text,
                    force_string: false,
                },
            ));
        }
        for (i, text) in index("set_string").into_iter().zip(self.set_string) {
            sets.push((
                i,
                SetArg {
                    text,
                    force_string: true,
                },
            ));
        }
        sets.sort_by_key(|(i, _)| *i);
        ValueInputs {
            preset: self.preset,
            files: self.values,
            sets: sets.into_iter().map(|(_, s)| s).collect(),
        }
    }
}

fn print_diagnostics(session: &Session, errors: Option<&Diagnostics>) {
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    for d in session
        .shown_warnings()
        .chain(errors.map(|e| e.0.iter()).into_iter().flatten())
    {
        let _ = writeln!(err, "{}", d.display(&session.sources));
    }
}

/// Run the CLI; returns the process exit code.
pub fn run() -> anyhow::Result<ExitCode> {
    let matches = Cli::command().get_matches();
    let cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches)?;
    let mut session = Session {
        allowed: cli.warnings.allow_warning,
        ..Session::default()
    };
    let deny = cli.warnings.deny_warnings;
    let code = run_command(cli.command, &matches, deny, &mut session)?;
    // A run that failed already says so; one that did its work fails
    // now when --deny-warnings finds a warning shown.
    let shown = session.shown_warning_count();
    if deny && shown > 0 && code == ExitCode::SUCCESS {
        eprintln!("{}", denied_line(shown, "the run's work is done"));
        return Ok(ExitCode::from(1));
    }
    Ok(code)
}

fn fleet_warnings(deny: bool, session: &Session) -> fleet::Warnings {
    fleet::Warnings {
        deny,
        allowed: session.allowed.clone(),
    }
}

/// The last line of a run that `--deny-warnings` failed.
fn denied_line(shown: usize, outcome: &str) -> String {
    format!(
        "meshgen: {shown} warning{} denied by --deny-warnings (allow one with --allow-warning CODE); {outcome}",
        if shown == 1 { "" } else { "s" }
    )
}

fn run_command(
    command: Command,
    matches: &clap::ArgMatches,
    deny: bool,
    session: &mut Session,
) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match command {
        Command::Generate {
            fleet: Some(fleet),
            output_dir: Some(dir),
            ..
        } => return fleet::generate(&fleet, &dir, &fleet_warnings(deny, session)),
        Command::Generate {
            values, output_dir, ..
        } => {
            let inputs = values.resolve(matches);
            // `-o -` is standard output, as helm and kubectl users expect
            // (`-o ./-` still names a directory).
            let output_dir = output_dir.filter(|d| d.as_os_str() != "-");
            let generated = match meshgen::generate(&inputs, session) {
                Ok(g) => g,
                Err(errors) => return Ok(fail(session, &errors, NOTHING_WRITTEN)),
            };
            // What `diff` warns about applying this tree over the one
            // there, read before that one is replaced.
            let upgrade = output_dir
                .as_deref()
                .map(|dir| meshgen::upgrade::warnings(dir, &generated.files))
                .unwrap_or_default();
            session.warnings.0.extend(upgrade);
            // --deny-warnings: nothing is written (or streamed) when a
            // warning known before writing is shown.
            let shown = session.shown_warning_count();
            if deny && shown > 0 {
                print_diagnostics(session, None);
                eprintln!("{}", denied_line(shown, NOTHING_WRITTEN));
                return Ok(ExitCode::from(1));
            }
            match output_dir {
                None => {
                    session.warnings.0.extend(stream_notices(&generated));
                    print_diagnostics(session, None);
                    let mut out = std::io::BufWriter::new(&mut stdout);
                    meshgen::write_manifest_stream(&generated, &mut out)?;
                    out.flush()?;
                }
                Some(dir) => {
                    let report = match timed_write(&dir, &generated) {
                        Ok(report) => report,
                        Err(e) => {
                            let outcome = e.outcome(&dir);
                            return Ok(fail(session, &e.diagnostic().clone().into(), &outcome));
                        }
                    };
                    session.warnings.0.extend(report.warnings);
                    print_diagnostics(session, None);
                    let shown = report.dir.display().to_string();
                    let shown = escape_controls(&shown);
                    if report.written == 0 {
                        eprintln!(
                            "{shown} is up to date: its {} files are what these values render; nothing written",
                            report.files
                        );
                    } else {
                        eprintln!(
                            "wrote {} files to {shown}{}{}",
                            report.files,
                            match (report.replaced, report.files - report.written) {
                                (false, _) => String::new(),
                                (true, 0) => " (replacing the previous output)".into(),
                                (true, n) => format!(
                                    " (replacing the previous output; {n} unchanged, kept as they were)"
                                ),
                            },
                            if generated.files.contains_key("README.md") {
                                format!("; {shown}/README.md says what was rendered and how to apply it")
                            } else {
                                String::new()
                            }
                        );
                    }
                }
            }
            // The process ends here: freeing the rendered tree (10,000
            // profiles are tens of thousands of allocations) one by one
            // would only delay the exit; the OS takes the memory back.
            std::mem::forget(generated);
        }
        Command::Values { values } => {
            let inputs = values.resolve(matches);
            match meshgen::validate(&inputs, session) {
                Ok(valid) => {
                    print_diagnostics(session, None);
                    if let Some(name) = &inputs.preset {
                        // The layers, so that a value the preset set can be told apart.
                        writeln!(
                            stdout,
                            "# merged: default_values.yaml, then preset `{name}` (presets/{name}.yaml, embedded), then --values and --set"
                        )?;
                    }
                    stdout.write_all(meshgen::yaml::emit::document(&valid.json).as_bytes())?;
                }
                Err(errors) => return Ok(fail(session, &errors, NO_VALUES_PRINTED)),
            }
        }
        Command::Diff {
            fleet: Some(fleet),
            output_dir,
            exit_code,
            stat,
            paths,
            ..
        } => {
            return fleet::diff(
                &fleet,
                &output_dir,
                stat,
                exit_code,
                &paths,
                &fleet_warnings(deny, session),
                &mut stdout,
            )
        }
        Command::Diff {
            values,
            output_dir,
            exit_code,
            stat,
            access,
            paths,
            ..
        } => {
            let inputs = values.resolve(matches);
            // As diff(1) and cmp(1): 0 same, 1 different (with
            // --exit-code), 2 when the comparison could not be made.
            let trouble = |session: &Session, errors: &Diagnostics| {
                fail(session, errors, NOTHING_COMPARED);
                ExitCode::from(2)
            };
            let generated = match meshgen::generate(&inputs, session) {
                Ok(g) => g,
                Err(errors) => return Ok(trouble(session, &errors)),
            };
            if access {
                return access_diff(&output_dir, &generated, exit_code, session, &mut stdout);
            }
            // A terminal gets the compared tree's control characters
            // escaped; a pipe or file gets a patch, byte for byte.
            let escape = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                meshgen::write::Escape::Terminal
            } else {
                meshgen::write::Escape::Patch
            };
            let mut out = std::io::BufWriter::new(&mut stdout);
            let changed = meshgen::write::diff_to(
                &output_dir,
                &generated.files,
                &paths,
                stat,
                escape,
                &mut out,
            );
            let changed = match changed {
                Ok(c) => c,
                Err(e) => {
                    drop(out);
                    return Ok(trouble(session, &e.into()));
                }
            };
            out.flush()?;
            drop(out);
            session
                .warnings
                .0
                .extend(meshgen::upgrade::warnings(&output_dir, &generated.files));
            print_diagnostics(session, None);
            if exit_code && changed {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Presets => {
            for p in meshgen::values::preset::ALL {
                writeln!(stdout, "{:<10} {}", p.name, p.summary)?;
            }
        }
        Command::Schema { fleet: true, .. } => {
            let mut text = serde_json::to_string_pretty(&meshgen::fleet::file::schema())?;
            text.push('\n');
            stdout.write_all(text.as_bytes())?
        }
        Command::Schema { merged: true, .. } => {
            stdout.write_all(meshgen::schema::SCHEMA_TEXT.as_bytes())?
        }
        Command::Schema { merged: false, .. } => {
            let text = meshgen::schema::file::values_file_schema_text(meshgen::schema::SCHEMA_TEXT)
                .map_err(|e| anyhow::anyhow!("internal: the embedded schema is not JSON: {e}"))?;
            stdout.write_all(text.as_bytes())?
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "meshgen", &mut stdout);
        }
        Command::Access { cmd } => {
            let code = access::run(cmd, matches, session, &mut stdout)?;
            stdout.flush()?;
            return Ok(code);
        }
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `meshgen diff --access`: the changes of access from the tree in `dir`
/// to `generated`, one line each; with `--exit-code`, 1 when one widened
/// (a narrowed access alone is printed and exits 0), 2 when the tree
/// could not be read.
fn access_diff(
    dir: &std::path::Path,
    generated: &meshgen::Generated,
    exit_code: bool,
    session: &mut Session,
    stdout: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let changes = match meshgen::access::delta::of_dir(dir, &generated.files) {
        Ok(c) => c,
        Err(e) => {
            fail(
                session,
                &meshgen::diagnostic::Diagnostic::error(Code::Access, e).into(),
                NOTHING_COMPARED,
            );
            return Ok(ExitCode::from(2));
        }
    };
    print_diagnostics(session, None);
    for c in &changes {
        writeln!(stdout, "{}", c.line())?;
    }
    stdout.flush()?;
    let widened = changes.iter().filter(|c| c.widened()).count();
    if changes.is_empty() {
        eprintln!("no change of access");
    } else {
        eprintln!(
            "{} change{} of access, {widened} widened",
            changes.len(),
            if changes.len() == 1 { "" } else { "s" }
        );
    }
    Ok(if exit_code && widened > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The write, as a stage of `MESHGEN_TIMINGS`.
pub(crate) fn timed_write(
    dir: &std::path::Path,
    generated: &meshgen::Generated,
) -> Result<meshgen::write::WriteReport, meshgen::write::WriteError> {
    let mut clock = meshgen::timing::StageClock::new();
    // Another run holds the output's parent: say so before waiting.
    let mut on_wait = |message: String| {
        let notice = meshgen::diagnostic::Diagnostic::notice(Code::OutputLocked, message);
        eprintln!("{}", notice.display(&meshgen::source::SourceMap::default()));
    };
    let written = meshgen::write::write_waiting(dir, &generated.files, &mut on_wait);
    clock.lap("write");
    written
}

/// The last line of a run that failed before touching the disk.
const NOTHING_WRITTEN: &str = "nothing was written";
/// The last line of `meshgen diff` that failed (exit code 2).
const NOTHING_COMPARED: &str = "nothing was compared (exit code 2)";
/// The last line of `meshgen access` that failed.
const NOTHING_READ: &str = "no access was computed";
/// The last line of `meshgen values` that failed (it never writes).
const NO_VALUES_PRINTED: &str = "no values were printed";

/// What the stream on stdout leaves out: a wrapper chart is Helm's to
/// render (its upstream charts are fetched by `helm dependency build`),
/// so each one is named with the commands that render it.
fn stream_notices(generated: &meshgen::Generated) -> Vec<meshgen::diagnostic::Diagnostic> {
    generated
        .files
        .keys()
        .filter_map(|path| path.strip_suffix("/Chart.yaml"))
        .map(|dir| {
            meshgen::diagnostic::Diagnostic::notice(Code::ChartNotStreamed, format!(
                "the Helm chart `{dir}` is not in this stream (Helm renders its upstream charts): write the tree with `-o DIR`, then `helm dependency build DIR/{dir} && helm template DIR/{dir}`"
            ))
        })
        .collect()
}

/// Print the diagnostics and a last line saying how many errors there
/// were and `outcome`, what is true of the output now.
fn fail(session: &Session, errors: &Diagnostics, outcome: &str) -> ExitCode {
    print_diagnostics(session, Some(errors));
    let n = errors.0.len();
    eprintln!(
        "meshgen: {n} error{}; {}",
        if n == 1 { "" } else { "s" },
        escape_controls(outcome)
    );
    ExitCode::from(1)
}
