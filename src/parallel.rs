//! How meshgen spreads work over the cores: an ordered map over a slice
//! (parse-back, fan-out rendering). The only other thread is the one
//! `generate` hashes the values digest on while the model is derived; the
//! write stays on one thread (see `write`). Threads
//! take small blocks of items from a shared counter until none are left,
//! so a thread slowed down by other work on the machine does not hold the
//! others up. Results come back in input order, so output stays
//! deterministic; a panic in a worker is re-raised, never turned into
//! missing results.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Most threads meshgen starts for one map.
const MAX_THREADS: usize = 8;

/// Blocks per thread: enough to even out uneven items and busy cores,
/// few enough that taking a block costs nothing.
const BLOCKS_PER_THREAD: usize = 16;

/// `items.iter().map(f).collect()`, on every core when there are more
/// than `min_chunk` items (a block never holds more than `min_chunk`).
pub fn map<T: Sync, R: Send>(items: &[T], min_chunk: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    if threads <= 1 || items.len() <= min_chunk {
        return items.iter().map(f).collect();
    }
    let block = items
        .len()
        .div_ceil(threads * BLOCKS_PER_THREAD)
        .clamp(1, min_chunk.max(1));
    let next = AtomicUsize::new(0);
    let (f, next) = (&f, &next);
    let mut blocks: Vec<(usize, Vec<R>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let start = next.fetch_add(block, Ordering::Relaxed);
                        if start >= items.len() {
                            return done;
                        }
                        let end = (start + block).min(items.len());
                        done.push((start, items[start..end].iter().map(f).collect::<Vec<R>>()));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    blocks.sort_unstable_by_key(|(start, _)| *start);
    blocks
        .into_iter()
        .flat_map(|(_, results)| results)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_input_order_across_threads() {
        let items: Vec<usize> = (0..10_000).collect();
        let doubled = super::map(&items, 16, |i| i * 2);
        assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(super::map(&items[..3], 16, |i| *i), vec![0, 1, 2]);
        // Uneven work still comes back complete and in order.
        let slow = super::map(&items[..500], 1, |i| {
            if i % 97 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            *i
        });
        assert_eq!(slow, items[..500].to_vec());
    }

    #[test]
    #[should_panic(expected = "boom")]
    fn a_panic_in_a_worker_is_re_raised() {
        let items: Vec<usize> = (0..1000).collect();
        super::map(&items, 1, |i| if *i == 700 { panic!("boom") } else { *i });
    }
}
