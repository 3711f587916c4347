// FlowSync's GraphiQL page (loaded as a file: the page allows no inline script).
//
// What GraphiQL keeps (tabs, queries, history, theme) lives in this tab's
// sessionStorage, or in memory where that is unavailable, and never in localStorage.
// Headers, which hold the API key, are kept nowhere: shouldPersistHeaders is false, and
// since GraphiQL's history records each run's headers regardless, every value written
// to the storage has its "headers" removed first. A key typed here is gone on reload.
(function () {
  "use strict";

  var PREFIX = "graphiql:";
  var AUTHORIZATION_TEMPLATE = '{"Authorization": "Bearer "}';
  var DEFAULT_QUERY = [
    "# FlowSync GraphQL",
    "# 1. Put your API key (fsk_...) or JWT after",
    "#    `Bearer ` in Headers, below.",
    "# 2. Run this with Ctrl-Enter.",
    "# Headers are never saved: a reload forgets the key.",
    "{",
    "  health {",
    "    status",
    "  }",
    "}",
    "",
  ].join("\n");

  function memoryStore() {
    var items = {};
    return {
      getItem: function (key) {
        return Object.prototype.hasOwnProperty.call(items, key) ? items[key] : null;
      },
      setItem: function (key, value) {
        items[key] = String(value);
      },
      removeItem: function (key) {
        delete items[key];
      },
      keys: function () {
        return Object.keys(items);
      },
    };
  }

  function sessionStore() {
    try {
      var session = window.sessionStorage;
      session.setItem(PREFIX + "probe", "1");
      session.removeItem(PREFIX + "probe");
      return {
        getItem: function (key) {
          return session.getItem(key);
        },
        setItem: function (key, value) {
          session.setItem(key, value);
        },
        removeItem: function (key) {
          session.removeItem(key);
        },
        keys: function () {
          var out = [];
          for (var i = 0; i < session.length; i++) out.push(session.key(i));
          return out;
        },
      };
    } catch (unavailable) {
      return null;
    }
  }

  var backing = sessionStore() || memoryStore();

  function ownKeys() {
    return backing.keys().filter(function (key) {
      return key.indexOf(PREFIX) === 0;
    });
  }

  // A stored value with every "headers" property emptied (GraphiQL's values are JSON:
  // tabs, history entries), or null for a value that is headers itself.
  function withoutHeaders(key, value) {
    if (/headers$/i.test(key)) return null;
    var parsed;
    try {
      parsed = JSON.parse(value);
    } catch (notJson) {
      return value;
    }
    (function strip(node) {
      if (node === null || typeof node !== "object") return;
      Object.keys(node).forEach(function (name) {
        if (name === "headers") node[name] = null;
        else strip(node[name]);
      });
    })(parsed);
    return JSON.stringify(parsed);
  }

  // GraphiQL's `storage` prop: the Storage interface, limited to GraphiQL's own keys
  // (its clear() must not wipe what other pages of this origin keep).
  var storage = {
    getItem: function (key) {
      return backing.getItem(key);
    },
    setItem: function (key, value) {
      var kept = withoutHeaders(key, String(value));
      if (kept === null) backing.removeItem(key);
      else backing.setItem(key, kept);
    },
    removeItem: function (key) {
      backing.removeItem(key);
    },
    clear: function () {
      ownKeys().forEach(function (key) {
        backing.removeItem(key);
      });
    },
    get length() {
      return ownKeys().length;
    },
  };

  var url = window.location.origin + window.location.pathname;

  var NO_KEY = {
    errors: [{ message: "Put your API key or JWT after `Bearer ` in Headers (below)." }],
  };

  function authorizationIn(headers) {
    return String((headers && (headers.Authorization || headers.authorization)) || "");
  }

  function authorizationOf(text) {
    try {
      return authorizationIn(JSON.parse(text || "{}"));
    } catch (notJson) {
      return "";
    }
  }

  function hasToken(authorization) {
    return /^bearer\s+\S+/i.test(authorization);
  }

  // Every operation needs a credential: without one, say so here instead of asking.
  function newFetcher() {
    var fetcher = GraphiQL.createFetcher({
      url: url,
      // graphql-transport-ws; the Headers editor's values go in `connection_init`,
      // which is where FlowSync reads a websocket's Authorization.
      subscriptionUrl: url.replace(/^http/, "ws"),
    });
    return function (params, options) {
      if (!hasToken(authorizationIn(options && options.headers))) {
        return Promise.resolve(NO_KEY);
      }
      return fetcher(params, options);
    };
  }

  // GraphiQL fetches the schema once, with the headers of that moment: the key is not
  // there yet (headers are never kept). A new fetcher makes it fetch the schema again,
  // once the Authorization header has been left unchanged for a moment.
  function FlowSyncGraphiQL() {
    var state = React.useState(newFetcher);
    var fetcher = state[0];
    var setFetcher = state[1];
    var used = React.useRef(authorizationOf(AUTHORIZATION_TEMPLATE));
    var timer = React.useRef(null);

    function onEditHeaders(headers) {
      window.clearTimeout(timer.current);
      timer.current = window.setTimeout(function () {
        var authorization = authorizationOf(headers);
        if (authorization !== used.current && hasToken(authorization)) {
          used.current = authorization;
          setFetcher(newFetcher);
        }
      }, 600);
    }

    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      storage: storage,
      shouldPersistHeaders: false,
      isHeadersEditorEnabled: true,
      headers: AUTHORIZATION_TEMPLATE,
      defaultHeaders: AUTHORIZATION_TEMPLATE,
      onEditHeaders: onEditHeaders,
      defaultQuery: DEFAULT_QUERY,
      defaultEditorToolsVisibility: "headers",
      inputValueDeprecation: true,
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(FlowSyncGraphiQL)
  );
})();
