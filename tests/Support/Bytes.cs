using CowWasm.Memory;

namespace CowWasm.Tests.Support;

internal static class Bytes
{
    /// <summary>Asserts that the mapped bytes of <paramref name="memory"/> equal <paramref name="model"/>, naming the first differing page.</summary>
    public static void AssertEqual(ReadOnlySpan<byte> model, PageMemory memory, string what)
    {
        Assert.True(model.Length == memory.ByteLength, $"{what}: length {memory.ByteLength}, model {model.Length}");
        for (long page = 0; page < memory.PageCount; page++)
        {
            ReadOnlySpan<byte> expected = model.Slice((int)Pages.ToBytes(page), Pages.Size);
            if (!expected.SequenceEqual(memory.GetPage(page)))
            {
                int at = expected.CommonPrefixLength(memory.GetPage(page));
                Assert.Fail($"{what}: page {page} differs at byte {at}: expected {expected[at]}, found {memory.GetPage(page)[at]}");
            }
        }
    }

    public static void Fill(PageMemory memory, long page, byte value) => memory.GetPage(page).Fill(value);
}
