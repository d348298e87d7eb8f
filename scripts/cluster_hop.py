# What the cluster's resume relay costs: ping round trips on one call straight to its node
# (OWNER), then resumed through another node (RELAY), which relays it (docs/scaling.md).
# Two `callgate serve --redis ...` nodes must be running; websockets comes from the
# Realtime SDK's venv (scripts/realtime-sdk --prepare):
#   ~/.cache/callgate/realtime-venv/bin/python scripts/cluster_hop.py 127.0.0.1:8102 127.0.0.1:8101
import asyncio, json, statistics, sys, time, websockets

async def pings(ws, n=200):
    rtts = []
    for i in range(n):
        t = time.perf_counter()
        await ws.send(json.dumps({"type": "ping", "t": i}))
        while True:
            m = await asyncio.wait_for(ws.recv(), 5)
            if isinstance(m, str) and json.loads(m).get("type") == "pong":
                break

        rtts.append((time.perf_counter() - t) * 1000)
        await asyncio.sleep(0.05)  # under the 50 messages/s text limit
    rtts.sort()
    return statistics.median(rtts), rtts[int(len(rtts) * 0.9)]

async def main():
    sub = ["callgate.v1"]
    ws = await websockets.connect(f"ws://{sys.argv[1]}/v1/call", subprotocols=sub)
    await ws.send(json.dumps({"type": "session.start", "input": {"sampleRate": 16000}}))
    while True:
        m = await ws.recv()
        e = json.loads(m) if isinstance(m, str) else {}
        if e.get("type") == "session.started":
            break
    while True:  # the greeting plays out; meanwhile the directory learns of the call
        m = await ws.recv()
        if isinstance(m, str) and json.loads(m).get("type") == "response.done":
            break
    await asyncio.sleep(2.5)
    direct = await pings(ws)
    await ws.close()
    await asyncio.sleep(0.5)
    ws = await websockets.connect(f"ws://{sys.argv[2]}/v1/call", subprotocols=sub)
    await ws.send(json.dumps({"type": "session.resume", "sessionId": e["sessionId"], "resumeToken": e["resumeToken"]}))
    while True:
        m = await ws.recv()
        if isinstance(m, str) and json.loads(m).get("type") == "session.resumed":
            break
    relayed = await pings(ws)
    print(f"direct to the owner: ping p50 {direct[0]:.2f} ms, p90 {direct[1]:.2f} ms")
    print(f"relayed by another node: ping p50 {relayed[0]:.2f} ms, p90 {relayed[1]:.2f} ms")
    await ws.send(json.dumps({"type": "session.end"}))

asyncio.run(main())
