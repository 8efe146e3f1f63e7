using System.Security.Cryptography;
using CowWasm.Pool.Log;

namespace CowWasm.CrashProbe;

public static partial class Probe
{
    /// <summary>The commit-log scenario (see Program.cs): appends until killed, saying which commits are durable.</summary>
    public static async Task<int> CommitLogAsync(string directory)
    {
        using CommitLog log = CommitLog.Open(directory, SHA256.HashData("kv.wat"u8), tornTail: (path, offset, why) =>
            Console.Error.WriteLine($"torn tail cut: {path} at {offset}: {why}"));
        var order = new Lock();
        long next = log.LastSequence;
        using var output = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };
        var say = new Lock();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            while (true)
            {
                ValueTask durable;
                long sequence;
                lock (order)
                {
                    sequence = ++next;
                    durable = log.AppendAsync(sequence, PayloadOf(sequence));
                }

                await durable;
                lock (say)
                {
                    output.WriteLine($"acked {sequence}");
                }
            }
        })));
        return 0;
    }

    /// <summary>The payload the commit-log scenario and CommitLogTests write for commit <paramref name="sequence"/>.</summary>
    public static byte[] PayloadOf(long sequence)
    {
        byte[] seed = SHA256.HashData(BitConverter.GetBytes(sequence));
        var payload = new byte[(int)(sequence * 7919 % 5000) + 1];
        for (int i = 0; i < payload.Length; i++)
        {
            payload[i] = seed[i % seed.Length];
        }

        return payload;
    }
}
