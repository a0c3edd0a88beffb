//! `meshgen access`: the arguments resolved into a tree and a request (or
//! a check file), the request model asked, its answer printed. Every text
//! a user or a tree supplied goes through `escape_controls`.

use super::{fail, print_diagnostics, AccessCommand, MatrixFormat, TreeArgs, NOTHING_READ};
use meshgen::access::coverage::{unmodelled, Unmodelled};
use meshgen::access::expect::{self, namespaced_arg};
use meshgen::access::explain::{explain, Caller, Explanation};
use meshgen::access::tree::{self, Tree};
use meshgen::code::Code;
use meshgen::diagnostic::{escape_controls, Diagnostic, Diagnostics};
use meshgen::source::SourceKind;
use meshgen::Session;
use std::io::Write;
use std::process::ExitCode;

/// The last line of an explain or check that could not load its tree.
const NOTHING_EXPLAINED: &str = "no request was explained";
const NOTHING_CHECKED: &str = "nothing was checked (exit code 2)";

pub(super) fn run(
    cmd: AccessCommand,
    matches: &clap::ArgMatches,
    session: &mut Session,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    // The matches of `access <sub>`, which hold --set's positions.
    let sub = matches
        .subcommand()
        .and_then(|(_, m)| m.subcommand())
        .map(|(_, m)| m);
    match cmd {
        AccessCommand::Explain {
            tree,
            user,
            idp_groups,
            service_account,
            anonymous,
            from_pod,
            method,
            url,
        } => {
            let caller = match (user, service_account, from_pod) {
                (Some(email), _, _) => Caller::User {
                    email,
                    groups: idp_groups,
                },
                (_, Some(sa), _) => match namespaced_arg(&sa) {
                    Ok((namespace, name)) => Caller::ServiceAccount { namespace, name },
                    Err(e) => return Ok(usage(&format!("--service-account: {e}"))),
                },
                (_, _, Some(pod)) => match namespaced_arg(&pod) {
                    Ok((namespace, account)) => Caller::Pod { namespace, account },
                    Err(e) => return Ok(usage(&format!("--from-pod: {e}"))),
                },
                _ if anonymous => Caller::Anonymous,
                _ => {
                    return Ok(usage(
                        "name the caller: --as, --service-account, --anonymous or --from-pod",
                    ))
                }
            };
            let t = match load(tree, sub, session) {
                Ok(t) => t,
                Err(errors) => return Ok(fail(session, &errors, NOTHING_EXPLAINED)),
            };
            let e = match explain(&t, &caller, &method, &url) {
                Ok(e) => e,
                Err(why) => return Ok(usage(&why)),
            };
            print_diagnostics(session, None);
            writeln!(
                out,
                "{}",
                escape_controls(&format!("{method} {url} as {caller}"))
            )?;
            print_explanation(out, &e, "")?;
            print_unmodelled(out, &unmodelled(&t))?;
            Ok(ExitCode::SUCCESS)
        }
        AccessCommand::Check { expect, tree } => {
            let shown = expect.display().to_string();
            let text = match std::fs::read_to_string(&expect) {
                Ok(t) => t,
                Err(e) => {
                    let d = Diagnostic::error(Code::Access, format!("can not read {shown}: {e}"));
                    fail(session, &d.into(), NOTHING_CHECKED);
                    return Ok(ExitCode::from(2));
                }
            };
            let id = session.sources.add(shown, SourceKind::File);
            let expectations = match expect::parse(&text, id) {
                Ok(e) => e,
                Err(errors) => {
                    fail(session, &errors, NOTHING_CHECKED);
                    return Ok(ExitCode::from(2));
                }
            };
            let t = match load(tree, sub, session) {
                Ok(t) => t,
                Err(errors) => {
                    fail(session, &errors, NOTHING_CHECKED);
                    return Ok(ExitCode::from(2));
                }
            };
            print_diagnostics(session, None);
            let mut failed = 0;
            for x in &expectations {
                let head = format!(
                    "[{}] {} {} as {} --> {}",
                    x.index,
                    x.method,
                    x.url,
                    x.caller,
                    session.sources.display(x.origin)
                );
                let e = match explain(&t, &x.caller, &x.method, &x.url) {
                    Ok(e) => e,
                    Err(why) => {
                        failed += 1;
                        writeln!(out, "{}", escape_controls(&format!("FAIL {head}: {why}")))?;
                        continue;
                    }
                };
                if e.verdict == x.expect {
                    writeln!(
                        out,
                        "{}",
                        escape_controls(&format!("ok   {head}: {}", x.expect.name()))
                    )?;
                } else {
                    failed += 1;
                    writeln!(
                        out,
                        "{}",
                        escape_controls(&format!(
                            "FAIL {head}: expected {}, got {}",
                            x.expect.name(),
                            e.verdict.name()
                        ))
                    )?;
                    print_explanation(out, &e, "     ")?;
                }
            }
            print_unmodelled(out, &unmodelled(&t))?;
            let n = expectations.len();
            writeln!(
                out,
                "{n} expectation{}: {} hold, {failed} failed",
                if n == 1 { "" } else { "s" },
                n - failed
            )?;
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AccessCommand::Matrix { tree, format } => {
            Ok(matrix_in_parts(tree, format, sub, session, out)?)
        }
    }
}

/// `access matrix`, computed a part at a time (`matrix::compute_in_parts`):
/// at 10,000 profiles neither the tree's objects nor the cells are held
/// whole (issue 31). CSV and JSON are written part by part; the table
/// keeps only its rows' text until its columns are aligned. The same text
/// as `Matrix::to_csv`, `Matrix::to_json` and `Matrix::to_table`.
fn matrix_in_parts(
    args: TreeArgs,
    format: MatrixFormat,
    sub: Option<&clap::ArgMatches>,
    session: &mut Session,
    out: &mut impl Write,
) -> std::io::Result<ExitCode> {
    use meshgen::access::matrix::{
        compute_in_parts, write_table, JsonRows, Part, PartsError, CSV_HEADER,
    };
    let mut clock = meshgen::timing::StageClock::new();
    let generated;
    let lazy = match &args.tree {
        Some(dir) => tree::Lazy::dir(dir),
        None => {
            let inputs = args.values.resolve_in(sub);
            generated = match meshgen::generate(&inputs, session) {
                Ok(g) => g,
                Err(errors) => return Ok(fail(session, &errors, NOTHING_READ)),
            };
            Ok(tree::Lazy::files(&generated.files))
        }
    };
    let mut with = Tree::new();
    let lazy = match lazy
        .and_then(|l| tree::merge_with_as(&mut with, &args.with, Some(tree::SELECT)).map(|()| l))
    {
        Ok(l) => l,
        Err(e) => {
            let errors: Diagnostics = Diagnostic::error(Code::Access, e).into();
            return Ok(fail(session, &errors, NOTHING_READ));
        }
    };
    let mut buffered = std::io::BufWriter::with_capacity(1 << 16, &mut *out);
    let mut json = None;
    let mut notes_of = Vec::new();
    let mut table: meshgen::access::matrix::TableLines = Default::default();
    let text = match format {
        MatrixFormat::Csv => Some(meshgen::access::matrix::Text::Csv),
        MatrixFormat::Json => Some(meshgen::access::matrix::Text::Json),
        MatrixFormat::Table => Some(meshgen::access::matrix::Text::Table),
    };
    let done = compute_in_parts(&lazy, with, text, &mut |p| match p {
        Part::Notes(notes) => {
            clock.lap("access: tree, notes");
            notes_of = notes.to_vec();
            session.warnings.0.extend(
                notes
                    .iter()
                    .map(|n| Diagnostic::notice(Code::NotModelled, n.clone())),
            );
            print_diagnostics(session, None);
            match format {
                MatrixFormat::Json => json = Some(JsonRows::start(&mut buffered)?),
                MatrixFormat::Csv => buffered.write_all(CSV_HEADER.as_bytes())?,
                MatrixFormat::Table => {}
            }
            Ok(())
        }
        Part::Cells(part) => match (json.as_mut(), format) {
            (Some(j), _) => j.part(part, &mut buffered),
            (None, MatrixFormat::Table) => {
                let (rows, nobody) = part.table_lines();
                table.0.extend(rows);
                table.1.extend(nobody);
                Ok(())
            }
            (None, _) => part.write_csv_rows(&mut buffered),
        },
        Part::Csv(text) => buffered.write_all(text),
        Part::Json(text) => match json.as_mut() {
            Some(j) => j.text(text, &mut buffered),
            None => Ok(()),
        },
        Part::Table((rows, nobody)) => {
            table.0.extend(rows);
            table.1.extend(nobody);
            Ok(())
        }
    });
    match done {
        Ok(()) => {}
        Err(PartsError::Write(e)) => return Err(e),
        Err(PartsError::Tree(e)) => {
            let errors: Diagnostics = Diagnostic::error(Code::Access, e).into();
            return Ok(fail(session, &errors, NOTHING_READ));
        }
    }
    if let Some(j) = json {
        j.finish(&notes_of, &mut buffered)?;
    }
    if matches!(format, MatrixFormat::Table) {
        write_table(table.0, &table.1, &mut buffered)?;
    }
    buffered.flush()?;
    clock.lap("access: matrix");
    // The process ends here; the OS takes the memory back.
    std::mem::forget(lazy);
    Ok(ExitCode::SUCCESS)
}

/// A usage error: one line, exit code 2.
fn usage(message: &str) -> ExitCode {
    let d = Diagnostic::error(Code::Usage, message);
    eprintln!("{}", d.display(&meshgen::source::SourceMap::default()));
    ExitCode::from(2)
}

/// The tree of `args`: a directory with its `--with` files, or the render
/// of the values with them.
fn load(
    args: TreeArgs,
    sub: Option<&clap::ArgMatches>,
    session: &mut Session,
) -> Result<Tree, Diagnostics> {
    load_as(args, sub, session, None)
}

/// [`load`], building each object in full or only the parts `select` names.
fn load_as(
    args: TreeArgs,
    sub: Option<&clap::ArgMatches>,
    session: &mut Session,
    select: Option<meshgen::yaml::load::Selection>,
) -> Result<Tree, Diagnostics> {
    let loaded = match &args.tree {
        Some(dir) => tree::load_as(dir, &args.with, select),
        None => {
            let inputs = args.values.resolve_in(sub);
            let mut generated = meshgen::generate(&inputs, session)?;
            let mut t = tree::from_files_as(std::mem::take(&mut generated.files), select);
            // 10,000 profiles are many allocations; the OS takes them back.
            std::mem::forget(generated);
            tree::merge_with_as(&mut t, &args.with, select).map(|()| t)
        }
    };
    loaded.map_err(|e| Diagnostic::error(Code::Access, e).into())
}

fn print_explanation(out: &mut impl Write, e: &Explanation, indent: &str) -> std::io::Result<()> {
    let detail = if e.detail.is_empty() {
        String::new()
    } else {
        format!(" ({})", e.detail)
    };
    writeln!(
        out,
        "{indent}{}",
        escape_controls(&format!("verdict: {}{detail}", e.verdict.describe()))
    )?;
    for (i, step) in e.steps.0.iter().enumerate() {
        writeln!(out, "{indent}  {}. {}", i + 1, escape_controls(&step.what))?;
        if let Some(o) = &step.object {
            writeln!(out, "{indent}     by {}", escape_controls(&o.to_string()))?;
        }
    }
    Ok(())
}

fn print_unmodelled(out: &mut impl Write, found: &[Unmodelled]) -> std::io::Result<()> {
    if found.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "not modelled ({} in the tree; the verdicts do not account for them):",
        found.len()
    )?;
    for u in found {
        writeln!(
            out,
            "  - {}",
            escape_controls(&format!("{}: {}", u.object, u.what))
        )?;
    }
    Ok(())
}
