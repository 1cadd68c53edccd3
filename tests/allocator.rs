//! The binaries' allocator option (`examples/support/alloc.rs`) is the one mimalloc names
//! `purge_delay`: the bindings give no name for it, so its index is checked here.

#[path = "../examples/support/alloc.rs"]
mod alloc;

#[test]
fn keep_freed_memory_sets_mimallocs_purge_delay() {
    // SAFETY: reads a process-wide option.
    let get = || unsafe { libmimalloc_sys::mi_option_get(alloc::PURGE_DELAY) };
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // mimalloc 3's default for `purge_delay` (options.c: 1000 ms).
        assert_eq!(get(), 1000);
        // Its neighbours' defaults in mimalloc 3's enum: `os_tag` (= 100) three after it,
        // `arena_purge_mult` (= 1) nine after.
        // SAFETY: reads process-wide options.
        let neighbours =
            unsafe { [3, 9].map(|k| libmimalloc_sys::mi_option_get(alloc::PURGE_DELAY + k)) };
        assert_eq!(neighbours, [100, 1]);
    }
    alloc::keep_freed_memory();
    assert_eq!(get(), -1);
}
