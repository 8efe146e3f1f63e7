;; Drives the WASI preview1 subset directly: each export calls one function and returns its errno;
;; out-parameters land at fixed addresses the test reads.
(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_seek" (func $fd_seek (param i32 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sched_yield" (func $sched_yield (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; open(path, len): fd at 100
  (func (export "open") (param i32 i32) (result i32)
    (call $path_open (i32.const 3) (i32.const 0) (local.get 0) (local.get 1) (i32.const 0)
      (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 100)))
  ;; read(fd, buf, len): iovec at 40, count at 104
  (func (export "read") (param i32 i32 i32) (result i32)
    (i32.store (i32.const 40) (local.get 1)) (i32.store (i32.const 44) (local.get 2))
    (call $fd_read (local.get 0) (i32.const 40) (i32.const 1) (i32.const 104)))
  ;; seek(fd, offset, whence): new offset at 112
  (func (export "seek") (param i32 i64 i32) (result i32)
    (call $fd_seek (local.get 0) (local.get 1) (local.get 2) (i32.const 112)))
  (func (export "close") (param i32) (result i32) (call $fd_close (local.get 0)))
  (func (export "prestat") (param i32) (result i32) (call $fd_prestat_get (local.get 0) (i32.const 48)))
  ;; args: count at 120, buffer size at 124; argv pointers at 300, strings at 400
  (func (export "args") (result i32)
    (drop (call $args_sizes_get (i32.const 120) (i32.const 124)))
    (call $args_get (i32.const 300) (i32.const 400)))
  (func (export "environ_sizes") (result i32) (call $environ_sizes_get (i32.const 128) (i32.const 132)))
  (func (export "clock") (param i32) (result i32) (call $clock_time_get (local.get 0) (i64.const 1) (i32.const 136)))
  (func (export "clock_bad_pointer") (result i32) (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 65535)))
  (func (export "yield") (result i32) (call $sched_yield))
  ;; write(fd, iovs, count): bytes written at 140
  (func (export "write") (param i32 i32 i32) (result i32) (call $fd_write (local.get 0) (local.get 1) (local.get 2) (i32.const 140)))
  ;; seek with the result pointer past the end of memory
  (func (export "seek_bad_pointer") (param i32 i64) (result i32) (call $fd_seek (local.get 0) (local.get 1) (i32.const 0) (i32.const 65535)))
)
