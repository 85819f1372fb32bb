//! Sorting that keeps the page small.
//!
//! A slice sort is compiled once per element type and comparison, and each copy inlines its
//! comparison into the sort's networks and partitions: 20 to 25 KiB of wasm for a comparison of
//! txids or outpoints. [`sort_by`] calls the comparison through a pointer instead, so a copy of
//! the sort holds no comparison and is a fifth of that size. The price is an indirect call per
//! comparison, which only matters to sorts in hot loops (the order book keeps its own orders).

use core::cmp::Ordering;

/// Sorts `items` by `compare`, unstably (equal items may be reordered).
#[inline(never)]
pub fn sort_by<T>(items: &mut [T], compare: &dyn Fn(&T, &T) -> Ordering) {
    items.sort_unstable_by(|a, b| compare(a, b));
}

/// Sorts `items` in their order, unstably, as [`sort_by`] does.
pub fn sort<T: Ord>(items: &mut [T]) {
    sort_by(items, &T::cmp);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_by_the_comparison_given() {
        let mut items = [(3, 'a'), (1, 'b'), (2, 'c'), (1, 'a')];
        sort_by(&mut items, &|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        assert_eq!(items, [(3, 'a'), (2, 'c'), (1, 'a'), (1, 'b')]);
    }

    #[test]
    fn sorts_in_order() {
        let mut items = vec![5u8, 0, 9, 9, 1];
        sort(&mut items);
        assert_eq!(items, [0, 1, 5, 9, 9]);
    }
}
