/**
 * A TCP proxy between one client and the server that a test can cut, to play a network
 * partition for that client only. `cut()` black-holes the traffic: open connections stop
 * forwarding in both directions (nothing is closed, so the client learns nothing from the
 * transport) and new connections are accepted but go nowhere. `close()` destroys everything.
 */
import * as net from 'node:net';

export interface Proxy {
  /** `127.0.0.1:P`: give this to the client instead of the server's endpoint. */
  readonly endpoint: string;
  cut(): void;
  close(): Promise<void>;
}

export async function startProxy(target: string): Promise<Proxy> {
  const [host, portText] = target.split(':');
  const port = Number(portText);
  const sockets = new Set<net.Socket>();
  const pairs = new Set<[net.Socket, net.Socket]>();
  let cut = false;
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('error', () => client.destroy());
    client.on('close', () => sockets.delete(client));
    if (cut) {
      client.pause();
      return;
    }
    const upstream = net.connect(port, host);
    sockets.add(upstream);
    upstream.on('error', () => upstream.destroy());
    upstream.on('close', () => {
      sockets.delete(upstream);
      if (!cut) client.destroy();
    });
    client.on('close', () => {
      if (!cut) upstream.destroy();
    });
    client.pipe(upstream);
    upstream.pipe(client);
    pairs.add([client, upstream]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address() as net.AddressInfo;
  return {
    endpoint: `127.0.0.1:${addr.port}`,
    cut() {
      cut = true;
      for (const [a, b] of pairs) {
        a.unpipe(b);
        b.unpipe(a);
        a.pause();
        b.pause();
      }
    },
    close() {
      cut = true;
      for (const s of [...sockets]) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
