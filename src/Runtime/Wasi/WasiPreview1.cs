using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using static CowWasm.Runtime.WasmValueKind;

namespace CowWasm.Runtime.Wasi;

/// <summary>
/// A WASI preview1 subset: args/environ, clock_time_get, fd_write to per-instance capture, fd_prestat_get
/// (EBADF unless a file set is configured), fd_fdstat_get, proc_exit, and an in-memory read-only file set
/// behind path_open/fd_read/fd_seek/fd_close. Every other wasi_snapshot_preview1 import the module asks for
/// answers ENOSYS.
/// </summary>
public static class WasiPreview1
{
    /// <summary>The import module name.</summary>
    public const string ModuleName = "wasi_snapshot_preview1";

    private const int Success = 0, EAcces = 2, EBadf = 8, EFault = 21, EInval = 28, EIsDir = 31, EMfile = 33, ENoent = 44, ENosys = 52,
        EOverflow = 61, ERofs = 69;

    /// <summary>Defines the subset in <paramref name="linker"/>, plus ENOSYS stubs for <paramref name="module"/>'s other WASI imports.</summary>
    public static Linker AddTo(Linker linker, WasmModuleInfo? module = null)
    {
        ArgumentNullException.ThrowIfNull(linker);
        Define(linker, "args_sizes_get", [I32, I32], (s, c, a) => Sizes(c, s.Configuration.Arguments, a));
        Define(linker, "args_get", [I32, I32], (s, c, a) => Strings(c, s.Configuration.Arguments, a));
        Define(linker, "environ_sizes_get", [I32, I32], (s, c, a) => Sizes(c, EnvironmentStrings(s), a));
        Define(linker, "environ_get", [I32, I32], (s, c, a) => Strings(c, EnvironmentStrings(s), a));
        Define(linker, "clock_time_get", [I32, I64, I32], ClockTimeGet);
        Define(linker, "fd_write", [I32, I32, I32, I32], FdWrite);
        Define(linker, "fd_read", [I32, I32, I32, I32], FdRead);
        Define(linker, "fd_seek", [I32, I64, I32, I32], FdSeek);
        Define(linker, "fd_close", [I32], (s, c, a) => s.Close((int)a[0]) ? Success : EBadf);
        Define(linker, "fd_prestat_get", [I32, I32], FdPrestatGet);
        Define(linker, "fd_prestat_dir_name", [I32, I32, I32], FdPrestatDirName);
        Define(linker, "fd_fdstat_get", [I32, I32], FdFdstatGet);
        Define(linker, "path_open", [I32, I32, I32, I32, I32, I64, I64, I32, I32], PathOpen);
        linker.Define(ModuleName, "proc_exit", [I32], [], (caller, args, results) => throw new GuestExitException((int)(uint)args[0]));

        foreach (WasmImport import in module?.Imports ?? [])
        {
            if (import.Module == ModuleName && import.Kind == WasmExternKind.Function && !linker.IsDefined(ModuleName, import.Name))
            {
                linker.Define(ModuleName, import.Name, import.FunctionType!, (caller, args, results) =>
                {
                    if (results.Length > 0)
                    {
                        results[0] = ENosys;
                    }
                });
            }
        }

        return linker;
    }

    private delegate int WasiCall(WasiState state, IGuestInstance caller, ReadOnlySpan<ulong> args);

    private static void Define(Linker linker, string name, WasmValueKind[] parameters, WasiCall call) =>
        linker.Define(ModuleName, name, parameters, [I32], (caller, args, results) =>
        {
            WasiState state = caller.Wasi ?? throw new InvalidOperationException(
                $"The guest called {ModuleName}.{name} but the instance was created without InstanceOptions.Wasi.");
            try
            {
                results[0] = (uint)call(state, caller, args);
            }
            catch (ArgumentOutOfRangeException)
            {
                results[0] = EFault; // a pointer outside guest memory
            }
        });

    private static List<string> EnvironmentStrings(WasiState s) =>
        [.. s.Configuration.Environment.Select(kv => $"{kv.Key}={kv.Value}")];

    private static int Sizes(IGuestInstance c, IReadOnlyList<string> strings, ReadOnlySpan<ulong> a)
    {
        WriteU32(c, a[0], (uint)strings.Count);
        WriteU32(c, a[1], (uint)strings.Sum(s => Encoding.UTF8.GetByteCount(s) + 1));
        return Success;
    }

    private static int Strings(IGuestInstance c, IReadOnlyList<string> strings, ReadOnlySpan<ulong> a)
    {
        long pointers = (uint)a[0], buffer = (uint)a[1];
        foreach (string s in strings)
        {
            WriteU32(c, pointers, (uint)buffer);
            pointers += 4;
            byte[] bytes = Encoding.UTF8.GetBytes(s + "\0");
            bytes.CopyTo(c.GetMemory(buffer, bytes.Length));
            buffer += bytes.Length;
        }

        return Success;
    }

    private static int ClockTimeGet(WasiState s, IGuestInstance c, ReadOnlySpan<ulong> a)
    {
        ulong nanoseconds = (uint)a[0] switch
        {
            0 => (ulong)(DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100, // realtime
            1 or 2 or 3 => (ulong)Stopwatch.GetTimestamp() * (1_000_000_000UL / (ulong)Stopwatch.Frequency), // monotonic, cputime
            _ => ulong.MaxValue,
        };
        if (nanoseconds == ulong.MaxValue)
        {
            return EInval;
        }

        BinaryPrimitives.WriteUInt64LittleEndian(c.GetMemory((uint)a[2], 8), nanoseconds);
        return Success;
    }

    private static int FdWrite(WasiState s, IGuestInstance c, ReadOnlySpan<ulong> a)
    {
        MemoryStream? target = (int)a[0] switch { 1 => s.Stdout, 2 => s.Stderr, _ => null };
        if (target is null)
        {
            return s.File((int)a[0]) is null ? EBadf : ERofs;
        }

        if ((uint)a[2] > s.Configuration.MaxIovecs)
        {
            return EInval;
        }

        ulong written = 0;
        for (long iov = (uint)a[1], end = iov + (8L * (uint)a[2]); iov < end; iov += 8)
        {
            uint buffer = ReadU32(c, iov), length = ReadU32(c, iov + 4);
            ReadOnlySpan<byte> bytes = c.ReadMemory(buffer, checked((int)length)); // bounds-checked even when dropped
            s.Capture(target, bytes);
            written += length;
        }

        if (written > uint.MaxValue)
        {
            return EOverflow; // the count does not fit the guest's size_t (nothing more is captured than the cap)
        }

        WriteU32(c, a[3], (uint)written);
        return Success;
    }

    private static int FdRead(WasiState s, IGuestInstance c, ReadOnlySpan<ulong> a)
    {
        if ((uint)a[2] > s.Configuration.MaxIovecs)
        {
            return EInval;
        }

        if ((int)a[0] == 0)
        {
            WriteU32(c, a[3], 0); // stdin is empty
            return Success;
        }

        if (s.File((int)a[0]) is not { } file)
        {
            return EBadf;
        }

        // Every destination is checked before anything moves: a fault leaves the position where it was.
        long position = file.Position;
        ulong read = 0;
        var copies = new List<(uint Buffer, int Length, long From)>();
        for (long iov = (uint)a[1], end = iov + (8L * (uint)a[2]); iov < end; iov += 8)
        {
            uint buffer = ReadU32(c, iov), length = ReadU32(c, iov + 4);
            int n = (int)Math.Min(length, Math.Max(0, file.Content.Length - position)); // 0 past the end
            _ = c.GetMemory(buffer, n);
            if (n > 0)
            {
                copies.Add((buffer, n, position));
            }

            position += n;
            read += (uint)n;
        }

        _ = c.GetMemory((uint)a[3], 4);
        foreach ((uint buffer, int length, long from) in copies)
        {
            file.Content.AsSpan((int)from, length).CopyTo(c.GetMemory(buffer, length));
        }

        file.Position = position;
        WriteU32(c, a[3], (uint)read); // at most the file's length
        return Success;
    }

    private static int FdSeek(WasiState s, IGuestInstance c, ReadOnlySpan<ulong> a)
    {
        if (s.File((int)a[0]) is not { } file)
        {
            return EBadf;
        }

        long offset = (long)a[1];
        long from = (uint)a[2] switch { 0 => 0, 1 => file.Position, 2 => file.Content.Length, _ => -1 };
        long target = from < 0 || (offset > 0 && from > long.MaxValue - offset) ? -1 : from + offset; // no wrap-around
        if (target < 0)
        {
            return EInval;
        }

        BinaryPrimitives.WriteUInt64LittleEndian(c.GetMemory((uint)a[3], 8), (ulong)target); // may fault: before the move
        file.Position = target;
        return Success;
    }

    private const int PreopenFd = 3;

    private static int FdPrestatGet(WasiState s, IGuestInstance c, ReadOnlySpan<ulong> a)
    {
        if (!s.HasPreopen || (int)a[0] != PreopenFd)
        {
            return EBadf;
        }

        Span<byte> prestat = c.GetMemory((uint)a[1], 8);
        prestat.Clear(); // tag 0 = directory
        BinaryPrimitives.WriteUInt32LittleEndian(prestat[4..], 1); // name "/"
        return Success;
    }

    private static int FdPrestatDirName(WasiState s, IGuestInstance c, ReadOnlySpan<ulong> a)
    {
        if (!s.HasPreopen || (int)a[0] != PreopenFd)
        {
            return EBadf;
        }

        if ((uint)a[2] < 1)
        {
            return EInval;
        }

        c.GetMemory((uint)a[1], 1)[0] = (byte)'/';
        return Success;
    }

    private static int FdFdstatGet(WasiState s, IGuestInstance c, ReadOnlySpan<ulong> a)
    {
        int fd = (int)a[0];
        byte filetype = fd switch
        {
            0 or 1 or 2 => 2, // character device
            PreopenFd when s.HasPreopen => 3, // directory
            _ when s.File(fd) is not null => 4, // regular file
            _ => 0,
        };
        if (filetype == 0)
        {
            return EBadf;
        }

        Span<byte> stat = c.GetMemory((uint)a[1], 24);
        stat.Clear();
        stat[0] = filetype;
        BinaryPrimitives.WriteUInt64LittleEndian(stat[8..], ulong.MaxValue); // rights: we check per call instead
        BinaryPrimitives.WriteUInt64LittleEndian(stat[16..], ulong.MaxValue);
        return Success;
    }

    private static int PathOpen(WasiState s, IGuestInstance c, ReadOnlySpan<ulong> a)
    {
        if (!s.HasPreopen || (int)a[0] != PreopenFd)
        {
            return EBadf;
        }

        string path = Encoding.UTF8.GetString(c.ReadMemory((uint)a[2], (int)(uint)a[3])).TrimStart('/');
        uint oflags = (uint)a[4];
        if ((oflags & (1 | 4 | 8)) != 0) // creat, excl, trunc
        {
            return EAcces;
        }

        if ((oflags & 2) != 0) // directory
        {
            return path is "" or "." ? ENosys : EIsDir;
        }

        if (!s.Configuration.Files.TryGetValue(path, out byte[]? content))
        {
            return ENoent;
        }

        _ = c.GetMemory((uint)a[8], 4); // a bad result pointer must not leave a file open
        int fd = s.Open(content);
        if (fd < 0)
        {
            return EMfile;
        }

        WriteU32(c, a[8], (uint)fd);
        return Success;
    }

    private static uint ReadU32(IGuestInstance c, long address) => BinaryPrimitives.ReadUInt32LittleEndian(c.ReadMemory(address, 4));

    private static void WriteU32(IGuestInstance c, ulong address, uint value) => WriteU32(c, (long)(uint)address, value);

    private static void WriteU32(IGuestInstance c, long address, uint value) =>
        BinaryPrimitives.WriteUInt32LittleEndian(c.GetMemory(address, 4), value);
}
