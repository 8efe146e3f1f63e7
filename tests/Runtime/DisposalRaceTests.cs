using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Tests.Runtime;

/// <summary>Disposing an instance while another thread keeps calling it: every call either runs or is refused.</summary>
public sealed class DisposalRaceTests
{
    [Fact]
    public void DisposeRacingCalls_NeverRunsACallOnAFreedInstance()
    {
        for (int round = 0; round < 200; round++)
        {
            WasmInstance guest = BoundsGuest.Create(Support.TestModules.Mode);
            using var started = new ManualResetEventSlim();
            Exception? ended = null;
            var caller = new Thread(() =>
            {
                try
                {
                    started.Set();
                    while (true)
                    {
                        Assert.Equal(0, guest.Call("count", 50));
                    }
                }
                catch (Exception e)
                {
                    ended = e;
                }
            });
            caller.Start();
            started.Wait();
            while (true)
            {
                try
                {
                    guest.Dispose();
                    break;
                }
                catch (InvalidOperationException e) when (e.Message.Contains("in use", StringComparison.Ordinal) ||
                                                          e.Message.Contains("while thread", StringComparison.Ordinal))
                {
                    // a call is running: try again
                }
            }

            caller.Join();
            Assert.IsType<ObjectDisposedException>(ended);
            Assert.Throws<ObjectDisposedException>(() => guest.Call("count", 1));
            guest.Dispose(); // twice is fine
        }
    }
}
