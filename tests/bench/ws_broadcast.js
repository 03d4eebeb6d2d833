// The anchor of tests/bench/rooms.sh: a broadcast server on Node.js and
// the npm package `ws` (the most used WebSocket server), doing what a
// jawas-ws room does: every message from one client goes to every other
// client connected. One process, one event loop, the way ws is run.
//   node ws_broadcast.js PORT   (NODE_PATH must find `ws`)
const { WebSocketServer, WebSocket } = require("ws");

const port = Number(process.argv[2]);
const wss = new WebSocketServer({ host: "127.0.0.1", port });
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => {
    for (const client of wss.clients) {
      if (client !== ws && client.readyState === WebSocket.OPEN) {
        client.send(data, { binary: isBinary });
      }
    }
  });
});
wss.on("listening", () => console.error("listening on " + port));
