// A socklab lab client as a socket-programming course writes one: java.net.Socket,
// a BufferedReader on its input, a PrintWriter on its output, one line at a time.
// The conformance suite compiles it with javac and runs it against the device:
//
//   java LabCourseClient HOST LAB_PORT CLOSED_PORT
//
// It prints what it sent and heard as "name> line" / "name< line", and
// "refused: <exception>" for the closed port; the suite checks the transcript.

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.net.ConnectException;
import java.net.Socket;

public class LabCourseClient {
    private final String name;
    private final Socket socket;
    private final BufferedReader in;
    private final PrintWriter out;

    LabCourseClient(String name, String host, int port) throws IOException {
        this.name = name;
        this.socket = new Socket(host, port);
        this.socket.setSoTimeout(10000);
        this.in = new BufferedReader(new InputStreamReader(socket.getInputStream(), "UTF-8"));
        this.out = new PrintWriter(socket.getOutputStream(), true);
    }

    String receive() throws IOException {
        String line = in.readLine();
        System.out.println(name + "< " + (line == null ? "<end of stream>" : line));
        return line;
    }

    void send(String line) {
        System.out.println(name + "> " + line);
        out.println(line);
    }

    /** Sends a command and prints every line up to and including END. */
    void list(String command) throws IOException {
        send(command);
        String line;
        do {
            line = receive();
        } while (line != null && !line.equals("END"));
    }

    String local() {
        return socket.getLocalAddress().getHostAddress() + ":" + socket.getLocalPort();
    }

    public static void main(String[] args) throws IOException {
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        int closedPort = Integer.parseInt(args[2]);

        LabCourseClient alice = new LabCourseClient("alice", host, port);
        alice.receive(); // HELLO
        LabCourseClient bob = new LabCourseClient("bob", host, port);
        bob.receive(); // HELLO
        System.out.println("alice is " + alice.local());

        alice.send("ECHO hello from Java");
        alice.receive();
        alice.send("SAY hi bob");
        alice.receive(); // OK
        bob.receive(); // FROM <alice> hi bob
        alice.list("WHO");
        alice.list("NETSTAT");
        bob.send("QUIT");
        bob.receive(); // BYE
        bob.receive(); // end of stream: the device closed
        bob.socket.close();
        alice.send("QUIT");
        alice.receive();
        alice.receive();
        alice.socket.close();

        try (Socket refused = new Socket(host, closedPort)) {
            System.out.println("connected to closed port " + closedPort);
        } catch (ConnectException e) {
            System.out.println("refused: " + e.getClass().getName() + ": " + e.getMessage());
        }
    }
}
