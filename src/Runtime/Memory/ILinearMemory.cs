using CowWasm.Memory;

namespace CowWasm.Runtime;

/// <summary>
/// Where an instance's linear memory lives: memory-engine memory in a reservation that never moves.
/// Sizes are in 4 KiB pages (<see cref="Pages.Size"/>); one Wasm page is <see cref="WasmPageSize"/> bytes.
/// </summary>
public interface ILinearMemory : IDisposable
{
    /// <summary>The mapped memory. Its pointer is the guest's address 0.</summary>
    PageMemory Memory { get; }

    /// <summary>Grows to <paramref name="pageCount"/> 4 KiB pages; false makes the guest's memory.grow return -1.</summary>
    bool TryGrow(long pageCount);

    /// <summary>Bytes in a Wasm page.</summary>
    const int WasmPageSize = 65536;

    /// <summary>4 KiB pages in a Wasm page.</summary>
    const int PagesPerWasmPage = WasmPageSize / Pages.Size;
}
