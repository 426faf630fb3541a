// The one connection to the push gateway (official centrifuge SDK) and the channels the page watches.
//
// Every watched channel follows the SDK's getState flow: the SDK calls `load` (REST, which returns
// the state together with its stream position `{offset, epoch}`), the state is rendered, and the SDK
// subscribes from exactly that position, so nothing published in between is missed. On a reconnect
// the SDK recovers the missed publications; if the gateway cannot (error 112) it calls `load` again.
// Connection and subscription tokens come through getToken callbacks, refreshed before they expire.

import { Centrifuge, UnauthorizedError } from 'centrifuge';
import { ApiError } from './api.js';
import { TokenError } from './session.js';
import { trace } from './ui.js';

const FRESH_MS = 2000; // a state loaded this recently is good enough as the subscribe position

function isForbidden(err) {
  return (err instanceof ApiError || err instanceof TokenError) && [401, 403, 404].includes(err.status);
}

export class Live extends EventTarget {
  constructor(config, session) {
    super();
    this.config = config;
    this.session = session;
    this.client = null;
    this.clientId = '';
    this.state = 'disconnected'; // connected | connecting | reconnecting | disconnected
    this.everConnected = false;
    this.url = config.gateway_urls[Math.floor(Math.random() * config.gateway_urls.length)];
  }

  start() {
    const options = {
      name: 'flashline-storefront',
      minReconnectDelay: 250,
      maxReconnectDelay: 4000,
      // pagehide/pageshow handling needs no customisation; debug logging via localStorage.centrifuge.debug
    };
    if (!this.session.isGuest) {
      // Signed in: the connection token comes (and is refreshed) through getToken. Guests connect anonymously.
      options.getToken = async () => {
        try {
          return await this.session.freshToken();
        } catch (err) {
          if (isForbidden(err)) throw new UnauthorizedError(err.message);
          throw err;
        }
      };
    }
    const client = new Centrifuge(this.url, options);
    this.client = client;
    this.everConnected = false;
    client.on('connecting', (ctx) => {
      if (client !== this.client) return;
      this.clientId = ''; // a write now must not name the connection that is gone
      trace('connecting', { code: ctx.code, reason: ctx.reason });
      this._setState(this.everConnected ? 'reconnecting' : 'connecting');
    });
    client.on('connected', (ctx) => {
      if (client !== this.client) return;
      this.everConnected = true;
      this.clientId = ctx.client;
      trace('connected', { client: ctx.client });
      this._setState('connected');
    });
    client.on('disconnected', (ctx) => {
      if (client !== this.client) return;
      this.clientId = '';
      trace('disconnected', { code: ctx.code, reason: ctx.reason });
      this._setState('disconnected');
    });
    client.on('error', (ctx) => trace('client-error', { type: ctx.type, message: ctx.error && ctx.error.message }));
    client.connect();
  }

  stop() {
    const client = this.client;
    this.client = null;
    this.clientId = '';
    if (!client) return;
    for (const sub of Object.values(client.subscriptions())) client.removeSubscription(sub);
    client.disconnect();
    this._setState('disconnected');
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state } }));
  }

  /**
   * Watch a channel.
   *   load():   Promise of the REST representation (with `stream`); `initial` may pass one just loaded.
   *   token():  Promise of {token} (a subscription grant) for channels that need one.
   *   apply(data, source): render a state; source is 'rest' or 'push'.
   *   onFatal(err): the state is not ours to see (401/403/404): the watch stops.
   * Returns {sub, close}.
   */
  watch(channel, { load, token, apply, initial = null, onFatal = null }) {
    const client = this.client;
    let fresh = initial ? { rep: initial, at: Date.now() } : null;
    let closed = false;
    const existing = client.getSubscription(channel);
    if (existing) client.removeSubscription(existing);

    const fatal = (err) => {
      if (closed) return;
      trace('watch-fatal', { channel, status: err.status, message: err.message });
      handle.close();
      if (onFatal) onFatal(err);
    };
    const options = {
      getState: async () => {
        let rep;
        if (fresh && Date.now() - fresh.at < FRESH_MS) {
          rep = fresh.rep;
        } else {
          try {
            rep = await load();
          } catch (err) {
            if (isForbidden(err)) setTimeout(() => fatal(err));
            throw err;
          }
          apply(rep, 'rest');
        }
        fresh = null;
        trace('get-state', { channel, offset: rep.stream.offset, epoch: rep.stream.epoch });
        return { offset: rep.stream.offset, epoch: rep.stream.epoch };
      },
    };
    if (token) {
      options.getToken = async () => {
        try {
          return (await token()).token;
        } catch (err) {
          if (isForbidden(err)) {
            setTimeout(() => fatal(err));
            throw new UnauthorizedError(err.message);
          }
          throw err;
        }
      };
    }
    const sub = client.newSubscription(channel, options);
    sub.on('publication', (ctx) => {
      trace('push', { channel, offset: ctx.offset });
      apply(ctx.data, 'push');
    });
    sub.on('subscribed', (ctx) => trace('subscribed', {
      channel, recovered: ctx.recovered, wasRecovering: ctx.wasRecovering,
      offset: ctx.streamPosition ? ctx.streamPosition.offset : null,
    }));
    sub.on('error', (ctx) => trace('sub-error', { channel, type: ctx.type, message: ctx.error && ctx.error.message }));
    sub.subscribe();
    const handle = {
      sub,
      close: () => {
        if (closed) return;
        closed = true;
        if (this.client === client && client.getSubscription(channel) === sub) client.removeSubscription(sub);
      },
    };
    return handle;
  }

  /** Subscribe without a REST state (e.g. `user#{id}` notifications): publications only. */
  listen(channel, onData) {
    const client = this.client;
    const existing = client.getSubscription(channel);
    if (existing) client.removeSubscription(existing);
    const sub = client.newSubscription(channel);
    sub.on('publication', (ctx) => onData(ctx.data));
    sub.on('error', (ctx) => trace('sub-error', { channel, type: ctx.type, message: ctx.error && ctx.error.message }));
    sub.subscribe();
    return {
      sub,
      close: () => {
        if (this.client === client && client.getSubscription(channel) === sub) client.removeSubscription(sub);
      },
    };
  }
}
