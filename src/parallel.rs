//! The one place meshgen spreads work over threads: an ordered map over a
//! slice, one chunk per core (parse-back, fan-out rendering, writes).
//! Results come back in input order, so output stays deterministic; a
//! panic in a worker is re-raised, never turned into missing results.

/// Most threads meshgen starts for one map.
const MAX_THREADS: usize = 8;

/// `items.iter().map(f).collect()`, on every core when there are more
/// than `min_chunk` items (each thread takes at least `min_chunk`).
pub fn map<T: Sync, R: Send>(items: &[T], min_chunk: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    if threads <= 1 || items.len() <= min_chunk {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads).max(min_chunk.max(1));
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_input_order_across_threads() {
        let items: Vec<usize> = (0..10_000).collect();
        let doubled = super::map(&items, 16, |i| i * 2);
        assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(super::map(&items[..3], 16, |i| *i), vec![0, 1, 2]);
    }
}
