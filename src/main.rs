fn main() {
    println!("camera-service {} ({})", camera_service::VERSION, camera_service::GIT_COMMIT);
}
