// Drives Ferry's AMQP front end with RabbitMQ's Java client (Debian's
// librabbitmq-client-java), the client under Spring AMQP.
//
// Run by TestJavaClient (clients_test.go) in the JDK's source-file mode:
// java -cp amqp-client.jar:slf4j-api.jar JavaClient.java URL. Each check
// prints "ok NAME"; the Go test requires every name it knows. Any
// exception exits non-zero.

import com.rabbitmq.client.*;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.*;
import java.util.concurrent.*;

public class JavaClient {
    static final String RUN = UUID.randomUUID().toString().substring(0, 8);

    static String name(String s) { return "java-" + s + "-" + RUN; }

    static void ok(String check) { System.out.println("ok " + check); }

    static void expect(boolean cond, String what) {
        if (!cond) throw new AssertionError(what);
    }

    static byte[] bytes(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    static String str(byte[] b) { return new String(b, StandardCharsets.UTF_8); }

    // The reply code a channel-closing call got.
    static int channelError(Connection conn, ChannelCall call) throws Exception {
        Channel ch = conn.createChannel();
        try {
            call.run(ch);
        } catch (IOException e) {
            if (e.getCause() instanceof ShutdownSignalException) {
                ShutdownSignalException s = (ShutdownSignalException) e.getCause();
                expect(!s.isHardError(), "a connection error: " + s);
                return ((AMQP.Channel.Close) s.getReason()).getReplyCode();
            }
            throw e;
        }
        throw new AssertionError("no channel error");
    }

    interface ChannelCall { void run(Channel ch) throws Exception; }

    @SuppressWarnings("unchecked")
    public static void main(String[] args) throws Exception {
        ConnectionFactory f = new ConnectionFactory();
        f.setUri(args[0]);
        f.setRequestedFrameMax(8192);
        f.setRequestedChannelMax(50);
        f.setRequestedHeartbeat(25);
        f.setAutomaticRecoveryEnabled(false);
        Connection conn = f.newConnection("ferry-java-test");
        Map<String, Object> caps = (Map<String, Object>) conn.getServerProperties().get("capabilities");
        expect(Boolean.TRUE.equals(caps.get("publisher_confirms")) && Boolean.TRUE.equals(caps.get("consumer_cancel_notify")),
            "capabilities " + caps);
        expect(conn.getFrameMax() == 8192 && conn.getChannelMax() == 50 && conn.getHeartbeat() == 25,
            "tune " + conn.getFrameMax() + " " + conn.getChannelMax() + " " + conn.getHeartbeat());
        ok("negotiation");

        ConnectionFactory bad = f.clone();
        bad.setPassword("wrong");
        try {
            bad.newConnection();
            throw new AssertionError("a wrong password connected");
        } catch (AuthenticationFailureException e) {
            expect(e.getMessage().contains("ACCESS_REFUSED"), "wrong password: " + e.getMessage());
        }
        ok("wrong-password");

        // Every field type the Java client writes, all properties, a body
        // in frames of 8 KiB, confirmed.
        Channel ch = conn.createChannel();
        ch.confirmSelect();
        String q = ch.queueDeclare().getQueue();
        expect(q.startsWith("amq.gen-"), "server-named queue " + q);
        Map<String, Object> headers = new HashMap<>();
        headers.put("string", "s");
        headers.put("int", 42);
        headers.put("long", 1L << 40);
        headers.put("short", (short) -3);
        headers.put("byte", (byte) 7);
        headers.put("float", 1.5f);
        headers.put("double", 2.25d);
        headers.put("decimal", new BigDecimal("3.14"));
        headers.put("timestamp", new Date(1600000000000L));
        headers.put("bool", true);
        headers.put("void", null);
        headers.put("bytes", new byte[] {0, (byte) 255});
        headers.put("list", Arrays.asList(1, "a", false));
        headers.put("table", Map.of("k", "v"));
        AMQP.BasicProperties sent = new AMQP.BasicProperties.Builder()
            .contentType("text/plain").contentEncoding("utf-8").headers(headers).deliveryMode(2).priority(3)
            .correlationId("corr").replyTo("reply").expiration("60000").messageId("mid")
            .timestamp(new Date(1600000000000L)).type("kind").userId("guest").appId("app").build();
        byte[] body = new byte[100000];
        for (int i = 0; i < body.length; i++) body[i] = (byte) i;
        ch.basicPublish("", q, true, sent, body);
        ch.waitForConfirmsOrDie(10000);
        GetResponse r = ch.basicGet(q, true);
        expect(Arrays.equals(r.getBody(), body), "body");
        AMQP.BasicProperties p = r.getProps();
        expect(p.getContentType().equals("text/plain") && p.getContentEncoding().equals("utf-8")
            && p.getDeliveryMode() == 2 && p.getPriority() == 3 && p.getCorrelationId().equals("corr")
            && p.getReplyTo().equals("reply") && p.getExpiration().equals("60000") && p.getMessageId().equals("mid")
            && p.getTimestamp().equals(new Date(1600000000000L)) && p.getType().equals("kind")
            && p.getUserId().equals("guest") && p.getAppId().equals("app"), "properties " + p);
        Map<String, Object> h = p.getHeaders();
        expect(h.get("string").toString().equals("s") && h.get("int").equals(42) && h.get("long").equals(1L << 40),
            "string, int, long: " + h);
        expect(h.get("short").equals((short) -3) && h.get("byte").equals((byte) 7), "short, byte: " + h);
        expect(h.get("float").equals(1.5f) && h.get("double").equals(2.25d), "float, double: " + h);
        expect(h.get("decimal").equals(new BigDecimal("3.14")) && h.get("timestamp").equals(new Date(1600000000000L)),
            "decimal, timestamp: " + h);
        expect(h.get("bool").equals(true) && h.containsKey("void") && h.get("void") == null, "bool, void: " + h);
        expect(Arrays.equals((byte[]) h.get("bytes"), new byte[] {0, (byte) 255}), "bytes: " + h);
        List<?> list = (List<?>) h.get("list");
        expect(list.get(0).equals(1) && list.get(1).toString().equals("a") && list.get(2).equals(false), "list: " + list);
        expect(((Map<?, ?>) h.get("table")).get("k").toString().equals("v"), "table: " + h.get("table"));
        ok("content");

        // A return, and a nack from a full reject-publish queue.
        BlockingQueue<Integer> returns = new LinkedBlockingQueue<>();
        ch.addReturnListener(ret -> returns.add(ret.getReplyCode()));
        ch.basicPublish("", name("nowhere"), true, null, bytes("lost"));
        ch.waitForConfirmsOrDie(10000);
        expect(Integer.valueOf(312).equals(returns.poll(10, TimeUnit.SECONDS)), "no basic.return 312");
        String full = name("full");
        ch.queueDeclare(full, false, false, true, Map.of("x-max-length", 1, "x-overflow", "reject-publish"));
        ch.basicPublish("", full, null, bytes("first"));
        ch.basicPublish("", full, null, bytes("second"));
        expect(!ch.waitForConfirms(10000), "a publish to a full reject-publish queue was confirmed");
        ch.queueDelete(full);
        ok("confirms");

        // Consumers: prefetch, priority, redelivery, the server's cancel.
        String cq = name("consume");
        ch.queueDeclare(cq, true, false, false, null);
        for (int i = 0; i < 10; i++) ch.basicPublish("", cq, MessageProperties.PERSISTENT_TEXT_PLAIN, bytes(String.valueOf(i)));
        ch.waitForConfirmsOrDie(10000);
        Channel c = conn.createChannel();
        c.basicQos(4);
        BlockingQueue<Envelope> got = new LinkedBlockingQueue<>();
        BlockingQueue<String> cancels = new LinkedBlockingQueue<>();
        c.basicConsume(cq, false, "java-consumer", false, false, Map.of("x-priority", 3), new DefaultConsumer(c) {
            @Override public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties props, byte[] b) {
                got.add(env);
            }
            @Override public void handleCancel(String tag) { cancels.add(tag); }
        });
        List<Envelope> firstFour = new ArrayList<>();
        for (int i = 0; i < 4; i++) firstFour.add(got.poll(10, TimeUnit.SECONDS));
        c.basicNack(firstFour.get(3).getDeliveryTag(), true, true);
        int redelivered = 0;
        for (int i = 0; i < 10; i++) {
            Envelope e = got.poll(10, TimeUnit.SECONDS);
            expect(e != null, "delivery " + i + " of 10 did not come");
            if (e.isRedeliver()) redelivered++;
            c.basicAck(e.getDeliveryTag(), false);
        }
        expect(redelivered == 4, redelivered + " redelivered, want 4");
        ch.queueDelete(cq);
        expect("java-consumer".equals(cancels.poll(10, TimeUnit.SECONDS)), "no basic.cancel from the server");
        ok("consumers");

        // Transactions, and channel errors that close only their channel.
        String tq = name("tx");
        ch.queueDeclare(tq, false, false, true, null);
        Channel t = conn.createChannel();
        t.txSelect();
        t.basicPublish("", tq, null, bytes("rolled-back"));
        t.txRollback();
        t.basicPublish("", tq, null, bytes("committed"));
        t.txCommit();
        expect(str(t.basicGet(tq, true).getBody()).equals("committed"), "transaction");
        expect(channelError(conn, x -> x.queueDeclarePassive(name("missing"))) == 404, "passive declare");
        expect(channelError(conn, x -> x.exchangeDeclare("amq.direct", "topic")) == 406, "amq.direct redeclared");
        t.basicPublish("", tq, null, bytes("keeps the queue busy"));
        t.txCommit();
        expect(channelError(conn, x -> x.queueDelete(tq, false, true)) == 406, "if-empty delete of a busy queue");
        ch.queueDeclarePassive(q);
        ok("transactions-and-errors");

        // Direct reply-to, with the client's own RPC helper on the server side.
        String rpc = name("rpc");
        ch.queueDeclare(rpc, false, false, true, null);
        Channel server = conn.createChannel();
        RpcServer rs = new RpcServer(server, rpc) {
            @Override public byte[] handleCall(Delivery request, AMQP.BasicProperties replyProps) {
                return bytes("pong:" + str(request.getBody()));
            }
        };
        Thread st = new Thread(() -> {
            try {
                rs.mainloop();
            } catch (Exception e) {
                e.printStackTrace(); // the reply then never comes, which fails the check
            }
        });
        st.start();
        Channel client = conn.createChannel();
        BlockingQueue<String> replies = new LinkedBlockingQueue<>();
        client.basicConsume("amq.rabbitmq.reply-to", true, new DefaultConsumer(client) {
            @Override public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties props, byte[] b) {
                replies.add(props.getCorrelationId() + "=" + str(b));
            }
        });
        client.basicPublish("", rpc, new AMQP.BasicProperties.Builder().replyTo("amq.rabbitmq.reply-to").correlationId("9").build(), bytes("ping"));
        expect("9=pong:ping".equals(replies.poll(10, TimeUnit.SECONDS)), "no reply");
        rs.terminateMainloop();
        st.join(10000);
        ok("direct-reply-to");
        conn.close();
        ok("close");

        // Automatic recovery (on by default in this client): when the
        // broker closes the connection, the client reconnects and declares
        // its server-named queue, binding and consumer again.
        ConnectionFactory rf = f.clone();
        rf.setAutomaticRecoveryEnabled(true);
        rf.setNetworkRecoveryInterval(100);
        Connection rc = rf.newConnection("ferry-java-recovery");
        CountDownLatch recovered = new CountDownLatch(1);
        ((Recoverable) rc).addRecoveryListener(new RecoveryListener() {
            @Override public void handleRecovery(Recoverable r) { recovered.countDown(); }
            @Override public void handleRecoveryStarted(Recoverable r) { }
        });
        Channel rch = rc.createChannel();
        String rq = rch.queueDeclare().getQueue();
        String rx = name("recovery");
        rch.exchangeDeclare(rx, "fanout", false, true, null);
        rch.queueBind(rq, rx, "");
        BlockingQueue<String> rgot = new LinkedBlockingQueue<>();
        rch.basicConsume(rq, true, new DefaultConsumer(rch) {
            @Override public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties props, byte[] b) {
                rgot.add(str(b));
            }
        });
        rch.basicPublish(rx, "", null, bytes("before"));
        expect("before".equals(rgot.poll(10, TimeUnit.SECONDS)), "nothing before the close");
        ok("ready-for-close"); // the Go test closes every connection now
        expect(recovered.await(30, TimeUnit.SECONDS), "the connection did not recover");
        rch.basicPublish(rx, "", null, bytes("after"));
        expect("after".equals(rgot.poll(10, TimeUnit.SECONDS)), "nothing after recovery");
        rc.close();
        ok("recovery");
    }
}
