//! Alias expansion measured before anything is built (issue 30): an
//! alias bomb of maps (`a1: &a1 {k0: *a0, ..., k9: *a0}`, nine levels in
//! a few hundred bytes) was refused only once the loader had built two
//! million nodes (about 1 GB, seconds). This pass reads the event stream
//! of a text holding aliases, counts the nodes each document expands to
//! exactly as the loader's budget counts them (one per scalar, list and
//! map, an alias as many as its anchor's node; map keys not counted, the
//! budget shared by every document of the input), keeps only a number per
//! anchor, and refuses with the loader's own message, at the same alias
//! and key path, before a node is built.
//!
//! What this pass does not understand (a parse error, a non-scalar key)
//! it leaves to the loader, which refuses it with its own message.

use super::load::{LoadError, PathSeg, NODE_BUDGET};
use crate::source::{Origin, Pos, SourceId};
use saphyr_parser::{Event, Parser};
use std::collections::HashMap;

enum Frame {
    Seq {
        start: usize,
        anchor: usize,
        index: usize,
    },
    Map {
        start: usize,
        anchor: usize,
        key: Option<String>,
        expect_key: bool,
    },
}

/// Refuse `text` if its aliases expand it past [`NODE_BUDGET`] nodes.
pub fn check_expansion(text: &str, source: SourceId) -> Result<(), LoadError> {
    if !text.contains('*') {
        return Ok(());
    }
    let mut parser = Parser::new_from_str(text);
    let mut anchors: HashMap<usize, usize> = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut total = 0usize;
    let mut expanded_alias = false;
    while let Some(Ok((event, span))) = parser.next_event() {
        let is_key = !matches!(event, Event::MappingEnd)
            && matches!(
                stack.last(),
                Some(Frame::Map {
                    expect_key: true,
                    ..
                })
            );
        if is_key {
            // Only scalar keys are counted on; the loader refuses others.
            let (
                Event::Scalar(key, ..),
                Some(Frame::Map {
                    key: k, expect_key, ..
                }),
            ) = (event, stack.last_mut())
            else {
                return Ok(());
            };
            *k = Some(key.into_owned());
            *expect_key = false;
            continue;
        }
        match event {
            Event::DocumentStart(_) => anchors.clear(),
            Event::Scalar(_, _, anchor, _) => {
                total += 1;
                if anchor != 0 {
                    anchors.insert(anchor, 1);
                }
                after_value(&mut stack);
            }
            Event::Alias(id) => {
                expanded_alias = true;
                total += anchors.get(&id).copied().unwrap_or(1);
                if total <= NODE_BUDGET {
                    after_value(&mut stack);
                }
            }
            Event::SequenceStart(anchor, _) => {
                total += 1;
                stack.push(Frame::Seq {
                    start: total - 1,
                    anchor,
                    index: 0,
                });
            }
            Event::MappingStart(anchor, _) => {
                total += 1;
                stack.push(Frame::Map {
                    start: total - 1,
                    anchor,
                    key: None,
                    expect_key: true,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(Frame::Seq { start, anchor, .. } | Frame::Map { start, anchor, .. }) =
                    stack.pop()
                else {
                    return Ok(());
                };
                if anchor != 0 {
                    anchors.insert(anchor, total - start);
                }
                after_value(&mut stack);
            }
            _ => {}
        }
        if total > NODE_BUDGET {
            if !expanded_alias {
                // A document this large without aliases costs what its
                // text does; the loader names it.
                return Ok(());
            }
            let why = "aliases expand it to";
            return Err(LoadError {
                message: format!("document too large: {why} more than {NODE_BUDGET} nodes (keys, values and list items), the limit for one input"),
                origin: Origin {
                    source,
                    pos: Pos {
                        line: span.start.line() as u32,
                        col: span.start.col() as u32 + 1,
                    },
                },
                path: path_of(&stack),
            });
        }
    }
    Ok(())
}

/// A value ended: the next event of a map is a key, of a list an item.
fn after_value(stack: &mut [Frame]) {
    match stack.last_mut() {
        Some(Frame::Map { expect_key, .. }) => *expect_key = true,
        Some(Frame::Seq { index, .. }) => *index += 1,
        None => {}
    }
}

fn path_of(stack: &[Frame]) -> Vec<PathSeg> {
    stack
        .iter()
        .filter_map(|f| match f {
            Frame::Seq { index, .. } => Some(PathSeg::Index(*index)),
            Frame::Map { key, .. } => key.clone().map(PathSeg::Key),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bomb(levels: usize) -> String {
        let mut text = String::from("kubernetes:\n  a0: &a0 {k0: 1, k1: 2, k2: 3, k3: 4, k4: 5, k5: 6, k6: 7, k7: 8, k8: 9, k9: 10}\n");
        for i in 1..=levels {
            let refs: Vec<String> = (0..10).map(|j| format!("k{j}: *a{}", i - 1)).collect();
            text.push_str(&format!("  a{i}: &a{i} {{{}}}\n", refs.join(", ")));
        }
        text
    }

    #[test]
    fn an_alias_bomb_of_maps_is_refused_where_the_loader_would() {
        let e = check_expansion(&bomb(8), SourceId(0)).unwrap_err();
        assert!(e
            .message
            .contains("aliases expand it to more than 2000000 nodes"));
        assert_eq!(
            e.path,
            [
                PathSeg::Key("kubernetes".into()),
                PathSeg::Key("a6".into()),
                PathSeg::Key("k0".into())
            ]
        );
        // Where the loader refused it, after building it: `kubernetes.a6.k0`.
        assert_eq!((e.origin.pos.line, e.origin.pos.col), (8, 16));
        // Within the budget: the same count the loader makes, no refusal.
        assert!(check_expansion(&bomb(5), SourceId(0)).is_ok());
        assert!(crate::yaml::load_documents(&bomb(5), SourceId(0)).is_ok());
    }
}
