//! Element order of merged lists, as upstream's `normalizeElementOrder`.
//!
//! After a merge, the elements named by the patch (or by its `$setElementOrder` list) are
//! sorted in the patch's order, the elements only the server had keep the server's order, and
//! the two runs are interleaved by `mergeSortedSlice`: a server-only element goes before a
//! patch element only when both appear in the server list and it came first there. A patch
//! element the server did not have therefore lands before the remaining server-only elements.
//!
//! Upstream sorts with Go's `sort.SliceStable` and a comparator that says "less" whenever one
//! side is missing from the order list. That comparator is not a strict order, so the result
//! depends on the sorting algorithm; [`go_stable_sort`] reproduces Go's (insertion sort on
//! blocks of 20, then SymMerge) so that even those cases come out as upstream's.

use serde_json::Value;

use super::error::{bad_arg_type, no_merge_key, MAP_TYPE};
use super::PatchError;

/// Whether the list elements are objects (compared by merge key) or primitives (by value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ElementKind {
    Map,
    Primitive,
}

/// Sorts `patch` by `patch_order` and `server_only` by `server_order`, then interleaves them.
pub(super) fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: ElementKind,
) -> Result<Vec<Value>, PatchError> {
    let patch = normalize_slice_order(patch, patch_order, merge_key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted_slice(
        server_only,
        patch,
        server_order,
        merge_key,
        kind,
    ))
}

/// Upstream's `normalizeSliceOrder`: a stable sort by position in `order`, with elements that
/// carry `$patch: delete` moved to the end.
fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: ElementKind,
) -> Result<Vec<Value>, PatchError> {
    let (mut to_sort, to_delete) = if kind == ElementKind::Map {
        validate_merge_key(merge_key, &to_sort)?;
        validate_merge_key(merge_key, order)?;
        extract_to_delete_items(to_sort)?
    } else {
        (to_sort, Vec::new())
    };
    go_stable_sort(&mut to_sort, |a, b| {
        match (
            index(order, a, merge_key, kind),
            index(order, b, merge_key, kind),
        ) {
            (Some(ia), Some(ib)) => ia < ib,
            _ => true,
        }
    });
    to_sort.extend(to_delete);
    Ok(to_sort)
}

fn validate_merge_key(merge_key: &str, list: &[Value]) -> Result<(), PatchError> {
    for item in list {
        let map = item
            .as_object()
            .ok_or_else(|| bad_arg_type(MAP_TYPE, Some(item)))?;
        if !map.contains_key(merge_key) {
            return Err(no_merge_key(item, merge_key));
        }
    }
    Ok(())
}

/// Splits a list of objects into the elements to keep and those carrying `$patch: delete`.
fn extract_to_delete_items(list: Vec<Value>) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut keep = Vec::new();
    let mut delete = Vec::new();
    for item in list {
        let map = item
            .as_object()
            .ok_or_else(|| bad_arg_type(MAP_TYPE, Some(&item)))?;
        if map.get("$patch").and_then(Value::as_str) == Some("delete") {
            delete.push(item);
        } else {
            keep.push(item);
        }
    }
    Ok((keep, delete))
}

/// Upstream's `mergeSortedSlice`: inserts each `left` (server-only) element into `right`
/// (patch elements) before the first patch element it precedes in `server_order`.
fn merge_sorted_slice(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: ElementKind,
) -> Vec<Value> {
    let mut merged = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                let li = index(server_order, l, merge_key, kind);
                let ri = index(server_order, r, merge_key, kind);
                matches!((li, ri), (Some(li), Some(ri)) if li < ri)
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        merged.extend(next);
    }
    merged
}

/// Position of `value` in `list`: by merge key value for objects (a missing key compares
/// equal to a missing key, as Go's nil does), by value for primitives.
pub(super) fn index(
    list: &[Value],
    value: &Value,
    merge_key: &str,
    kind: ElementKind,
) -> Option<usize> {
    match kind {
        ElementKind::Map => {
            let key_of = |v: &Value| v.as_object().and_then(|m| m.get(merge_key)).cloned();
            let wanted = key_of(value);
            list.iter().position(|v| key_of(v) == wanted)
        }
        ElementKind::Primitive => list.iter().position(|v| v == value),
    }
}

/// Go's `sort.SliceStable`, step for step: insertion sort on blocks of 20 elements, then
/// rounds of SymMerge over doubling block sizes. `less` is called on the current elements
/// exactly as Go calls its index-based comparator.
pub(super) fn go_stable_sort<T>(data: &mut [T], less: impl Fn(&T, &T) -> bool) {
    const BLOCK: usize = 20;
    let n = data.len();
    let mut a = 0;
    while a + BLOCK <= n {
        insertion_sort(data, a, a + BLOCK, &less);
        a += BLOCK;
    }
    insertion_sort(data, a, n, &less);

    let mut block = BLOCK;
    while block < n {
        let mut a = 0;
        while a + 2 * block <= n {
            sym_merge(data, a, a + block, a + 2 * block, &less);
            a += 2 * block;
        }
        if a + block < n {
            sym_merge(data, a, a + block, n, &less);
        }
        block *= 2;
    }
}

fn insertion_sort<T>(data: &mut [T], a: usize, b: usize, less: &impl Fn(&T, &T) -> bool) {
    for i in a + 1..b {
        let mut j = i;
        while j > a && less(&data[j], &data[j - 1]) {
            data.swap(j, j - 1);
            j -= 1;
        }
    }
}

/// Merges the sorted runs `data[a..m]` and `data[m..b]` in place (Kim & Kutzner's SymMerge,
/// the algorithm Go's stable sort uses).
fn sym_merge<T>(data: &mut [T], a: usize, m: usize, b: usize, less: &impl Fn(&T, &T) -> bool) {
    if m - a == 1 {
        // Binary search for the first element of data[m..b] not less than data[a], then
        // move data[a] just before it.
        let (mut i, mut j) = (m, b);
        while i < j {
            let h = (i + j) / 2;
            if less(&data[h], &data[a]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        for k in a..i - 1 {
            data.swap(k, k + 1);
        }
        return;
    }
    if b - m == 1 {
        // Binary search for the first element of data[a..m] that data[m] is less than, then
        // move data[m] just before it.
        let (mut i, mut j) = (a, m);
        while i < j {
            let h = (i + j) / 2;
            if !less(&data[m], &data[h]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        let mut k = m;
        while k > i {
            data.swap(k, k - 1);
            k -= 1;
        }
        return;
    }
    let mid = (a + b) / 2;
    let n = mid + m;
    let (mut start, mut r) = if m > mid { (n - b, mid) } else { (a, m) };
    let p = n - 1;
    while start < r {
        let c = (start + r) / 2;
        if !less(&data[p - c], &data[c]) {
            start = c + 1;
        } else {
            r = c;
        }
    }
    let end = n - start;
    if start < m && m < end {
        rotate(data, start, m, end);
    }
    if a < start && start < mid {
        sym_merge(data, a, start, mid, less);
    }
    if mid < end && end < b {
        sym_merge(data, mid, end, b, less);
    }
}

/// Swaps the blocks `data[a..m]` and `data[m..b]` with Go's swap sequence (the comparator
/// never runs here, so the standard rotation gives the same result).
fn rotate<T>(data: &mut [T], a: usize, m: usize, b: usize) {
    data[a..b].rotate_left(m - a);
}

/// Splits `merged` into the primitives present in `present` and the others, keeping order.
pub(super) fn partition_primitives(
    merged: Vec<Value>,
    present: &[Value],
) -> (Vec<Value>, Vec<Value>) {
    merged.into_iter().partition(|v| present.contains(v))
}

/// Splits `merged` into the objects whose merge key value appears in `present` and the others.
pub(super) fn partition_maps(
    merged: Vec<Value>,
    present: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut in_patch = Vec::new();
    let mut server_only = Vec::new();
    for item in merged {
        let map = item
            .as_object()
            .ok_or_else(|| bad_arg_type(MAP_TYPE, Some(&item)))?;
        let key_value = map
            .get(merge_key)
            .ok_or_else(|| no_merge_key(&item, merge_key))?;
        if find_by_key(present, merge_key, key_value)?.is_some() {
            in_patch.push(item);
        } else {
            server_only.push(item);
        }
    }
    Ok((in_patch, server_only))
}

/// Upstream's `findMapInSliceBasedOnKeyValue`: the index of the first object whose `key`
/// equals `value`. Every element must be an object.
pub(super) fn find_by_key(
    list: &[Value],
    key: &str,
    value: &Value,
) -> Result<Option<usize>, PatchError> {
    for (i, item) in list.iter().enumerate() {
        let map = item.as_object().ok_or(PatchError::NotAMap { index: i })?;
        if map.get(key) == Some(value) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reference stable sort for a consistent comparator.
    fn sorted_by_key(mut v: Vec<(u8, usize)>) -> Vec<(u8, usize)> {
        v.sort_by_key(|e| e.0);
        v
    }

    #[test]
    fn go_stable_sort_is_stable_for_long_inputs_with_a_consistent_order() {
        // 97 elements: exercises insertion-sorted blocks and several SymMerge rounds.
        let input: Vec<(u8, usize)> = (0..97).map(|i| (((i * 37) % 11) as u8, i)).collect();
        let mut sorted = input.clone();
        go_stable_sort(&mut sorted, |a, b| a.0 < b.0);
        assert_eq!(sorted, sorted_by_key(input));
    }

    #[test]
    fn go_stable_sort_with_upstream_comparator_moves_unordered_elements_like_go() {
        // Go: sort.SliceStable([b x a], less) where x is missing from the order [a b] and
        // less is "true unless both are found": insertion sort swaps x before b, then a
        // before b (a < b) and before x (less(a, x) holds because x is missing): [a x b].
        let order = ["a", "b"];
        let pos = |s: &&str| order.iter().position(|o| o == s);
        let mut data = vec!["b", "x", "a"];
        go_stable_sort(&mut data, |l, r| match (pos(l), pos(r)) {
            (Some(li), Some(ri)) => li < ri,
            _ => true,
        });
        assert_eq!(data, vec!["a", "x", "b"]);
    }
}
