// A small application built on Apache Curator's recipes, run by
// tests/real_apps.rs against a test ZooKeeper server: it leaves the kinds of
// nodes real Curator deployments leave (lock and latch ephemerals under
// containers, a queue's persistent sequential items, a shared counter, a
// service registration) and keeps taking a lock in turns so the tree changes
// while it is compared and copied.
//
//   java CuratorEstate CONNECT BASE_PATH
//
// Prints READY once the tree is built; exits when stdin closes or on SIGTERM.

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.queue.DistributedIdQueue;
import org.apache.curator.framework.recipes.queue.QueueBuilder;
import org.apache.curator.framework.recipes.queue.QueueSerializer;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.retry.RetryNTimes;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.Id;
import org.apache.zookeeper.server.auth.DigestAuthenticationProvider;

public final class CuratorEstate {
    /** Items put on the queue; the first QUEUE_TAKEN are then taken back. */
    static final int QUEUE_ITEMS = 8;
    static final int QUEUE_TAKEN = 2;
    static final int SHARED_COUNT = 42;
    /** Lock turns each taker makes before the tree is READY. */
    static final int INITIAL_TURNS = 4;
    /** Bounds the churn (about a minute) should nobody close stdin. */
    static final int MAX_TURNS = 2500;
    static final long HOLD_MS = 20;

    static final AtomicBoolean stopping = new AtomicBoolean(false);

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: CuratorEstate CONNECT BASE_PATH");
            System.exit(2);
        }
        String base = args[1];
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                args[0], 15000, 5000, new RetryNTimes(20, 250));
        client.start();
        if (!client.blockUntilConnected(20, TimeUnit.SECONDS)) {
            System.err.println("could not connect to " + args[0]);
            System.exit(1);
        }

        // Parents Curator makes as containers: the server removes them once
        // emptied, which the tree's shape below never lets happen.
        client.create().creatingParentContainersIfNeeded()
                .forPath(base + "/config/cluster/settings", utf8("replicas=3\n"));

        // Only the application's own digest identity may change this; everyone
        // else reads it.
        client.create().creatingParentContainersIfNeeded()
                .withACL(Arrays.asList(
                        new ACL(ZooDefs.Perms.ALL, new Id("digest",
                                DigestAuthenticationProvider.generateDigest("estate:s3cret"))),
                        new ACL(ZooDefs.Perms.READ, ZooDefs.Ids.ANYONE_ID_UNSAFE)))
                .forPath(base + "/config/cluster/owner", utf8("estate\n"));

        InterProcessMutex held = new InterProcessMutex(client, base + "/locks/held");
        held.acquire();

        LeaderLatch latch = new LeaderLatch(client, base + "/leader", "estate-1");
        latch.start();
        if (!latch.await(20, TimeUnit.SECONDS)) {
            throw new IllegalStateException("leader latch not acquired");
        }

        QueueSerializer<String> serializer = new QueueSerializer<String>() {
            public byte[] serialize(String item) {
                return utf8(item);
            }

            public String deserialize(byte[] bytes) {
                return new String(bytes, StandardCharsets.UTF_8);
            }
        };
        // No consumer: producers only, so the items stay, except the ones
        // taken back, which leave the queue's counter ahead of its items.
        DistributedIdQueue<String> queue = QueueBuilder
                .builder(client, null, serializer, base + "/queue").buildIdQueue();
        queue.start();
        for (int i = 0; i < QUEUE_ITEMS; i++) {
            queue.put("payload of job " + i, "job-" + i);
        }
        for (int i = 0; i < QUEUE_TAKEN; i++) {
            if (queue.remove("job-" + i) != 1) {
                throw new IllegalStateException("job-" + i + " not taken back");
            }
        }

        SharedCount count = new SharedCount(client, base + "/counter", 0);
        count.start();
        count.setCount(SHARED_COUNT);

        ServiceInstance<Void> me = ServiceInstance.<Void>builder()
                .name("worker").address("127.0.0.1").port(8080).id("worker-1").build();
        ServiceDiscovery<Void> discovery = ServiceDiscoveryBuilder.builder(Void.class)
                .client(client).basePath(base + "/services").thisInstance(me).build();
        discovery.start();

        // Two takers of one lock in turns: each queues again while the other
        // holds it, so the lock's container is never empty (and never reaped).
        InterProcessMutex a = new InterProcessMutex(client, base + "/locks/turns");
        InterProcessMutex b = new InterProcessMutex(client, base + "/locks/turns");
        for (int i = 0; i < INITIAL_TURNS; i++) {
            a.acquire();
            a.release();
            b.acquire();
            b.release();
        }
        // A mutex belongs to the thread that took it: each taker has its own.
        for (InterProcessMutex lock : new InterProcessMutex[] {a, b}) {
            Thread taker = new Thread(() -> takeTurns(lock));
            taker.setDaemon(true);
            taker.start();
        }

        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stopping.set(true);
            client.close();
        }));

        System.out.println("READY");
        System.out.flush();

        InputStream in = System.in;
        byte[] buf = new byte[256];
        while (in.read(buf) >= 0) {
            // Anything written is ignored; only the end of stdin matters.
        }
        System.exit(0);
    }

    /**
     * Takes and releases the lock MAX_TURNS times, then keeps it (the other
     * taker then waits for good): either way the lock's container keeps a
     * child.
     */
    static void takeTurns(InterProcessMutex lock) {
        try {
            for (int i = 0; i < MAX_TURNS && !stopping.get(); i++) {
                lock.acquire();
                Thread.sleep(HOLD_MS);
                lock.release();
                // Lets the other taker in before queueing again.
                Thread.sleep(1);
            }
            lock.acquire();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            if (!stopping.get()) {
                System.err.println("lock turns stopped: " + e);
            }
        }
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
